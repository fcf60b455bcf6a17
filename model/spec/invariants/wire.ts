// km_socket and the bytes on the wire (section 4): which sockets sendmsg_prog sees, and the
// original-destination prefix a waypoint listener receives.

import { connectionLocalKeys, ipKnown, payloadHex, sameSockAddr, show, stepViews, tlvHex, type ConnectView } from '../facts.js';
import { Checker, type Invariant } from '../types.js';

export const sockhashMembership: Invariant = {
  name: 'sockhash-membership',
  statement:
    'A socket is in km_socket only when it is TCP, its connect succeeded and its storage says via_waypoint, and then exactly when its local IP is enrolled in km_manage; a connect that runs no program leaves membership as it was.',
  check(ctx) {
    const chk = new Checker();
    for (const v of stepViews(ctx)) {
      if (v.op.op !== 'connect' || v.obs.inSockhash === undefined || v.family === null) continue;
      const member = v.obs.inSockhash;
      const where = `operation ${v.i + 1}`;
      if (!v.runsProgram) {
        chk.expect(member === v.inSockhashBefore, () => `${where}: km_socket membership changed on a connect that runs no program`);
        continue;
      }
      const peer = v.obs.peer ?? null;
      const via = v.obs.storage?.viaWaypoint ?? false;
      if (v.protocol === 'tcp' && peer) chk.exercise();
      if (member) {
        chk.expect(v.protocol === 'tcp', () => `${where}: a UDP socket is in km_socket`);
        chk.expect(peer !== null, () => `${where}: a socket whose connect failed is in km_socket`);
        chk.expect(via, () => `${where}: a socket in km_socket whose storage does not say via_waypoint`);
      }
      if (v.protocol === 'tcp' && peer && via) {
        // The local address is not observed: every one that explains the peer must agree.
        const known = connectionLocalKeys(ctx.env, v as ConnectView, peer).map((k) => ipKnown(v, k));
        const enrolled = known.length > 0 && known.every((k) => k === known[0]) ? known[0]! : 'unknown';
        if (enrolled !== 'unknown') {
          chk.expect(
            member === enrolled,
            () =>
              `${where}: via_waypoint socket to ${show(peer)} with local IP ${enrolled ? 'enrolled' : 'not enrolled'} is ${member ? '' : 'not '}in km_socket${member ? '' : ' under its forward tuple (sockops inserts it under that key)'}`,
          );
        }
      }
    }
    return chk.verdict();
  },
};

export const tlvPrefix: Invariant = {
  name: 'tlv-prefix',
  statement:
    "A connection's stream starts with exactly one original-destination prefix, byte-exact in the original-destination prefix format and carrying the recorded original, when the socket is in km_socket and via_waypoint at its first message; otherwise it carries none; the payload follows intact.",
  check(ctx) {
    const chk = new Checker();
    for (const v of stepViews(ctx)) {
      if (v.op.op !== 'send' || v.family === null || v.life === null) continue;
      const stream = v.obs.stream;
      if (stream === undefined) continue;
      const where = `operation ${v.i + 1}`;
      const est = v.established;
      if (!est || v.protocol !== 'tcp') {
        chk.expect(stream === null, () => `${where}: a stream on a socket with no TCP connection`);
        continue;
      }
      if (!chk.expect(stream !== null, () => `${where}: no stream on an established TCP connection`) || !stream) continue;
      const total = v.sentBefore + v.op.messages;
      if (total > 0) chk.exercise();
      const st = est.obs.storage ?? null;
      const prefixed = (est.obs.inSockhash ?? false) && !!st?.viaWaypoint && !st.hasEncoded && total > 0;
      const original = st?.original ?? null;
      if (prefixed && !chk.expect(original !== null, () => `${where}: via_waypoint socket with no recorded original`)) continue;
      const expected = (prefixed && original ? tlvHex(v.family, original) : '') + payloadHex(v.op.sock, 0, total);
      chk.expect(stream.hex === expected, () => `${where}: the peer received ${stream.hex || '(nothing)'}, expected ${expected || '(nothing)'}`);
      if (prefixed && original) {
        chk.expect(
          stream.tlv !== null && stream.tlv.form === v.family && sameSockAddr(stream.tlv.original, original),
          () => `${where}: expected a ${v.family} prefix carrying ${show(original)}, saw ${JSON.stringify(stream.tlv)}`,
        );
      } else {
        chk.expect(stream.tlv === null, () => `${where}: a prefix ${JSON.stringify(stream.tlv)} on a connection that should carry none`);
      }
      chk.expect(stream.payloadIntact, () => `${where}: the payload after the prefix is not intact`);
      const after = v.obs.storage;
      if (after && st) {
        chk.expect(after.hasEncoded === (st.hasEncoded || prefixed), () => `${where}: has_encoded is ${after.hasEncoded}, expected ${st.hasEncoded || prefixed}`);
      }
    }
    return chk.verdict();
  },
};
