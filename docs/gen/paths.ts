// The paths of one connect4/connect6 pass, described for people: the decision table and the
// Mermaid flowchart. PATH_DOCS is keyed by PassPath, so a new path in model/spec/passes.ts does
// not compile until it is documented here; results come from RESULT_OF_PATH, never restated.

import { TAIL_CALL_LIMIT } from '../../model/domain.js';
import { PASS_PATHS, RESULT_OF_PATH, type PassPath, type PassResult } from '../../model/spec/index.js';
import { code, mdTable } from './markdown.js';

/** Decision nodes of the flowchart, in pipeline order (kmesh-dataplane.md section 3). */
const NODES = {
  q_control: { shape: 'decision', text: '3.1 control connect?<br/>0.0.0.2 or ::2, port 929 or 930' },
  q_enrolled: { shape: 'decision', text: '3.2 namespace cookie<br/>in km_manage?' },
  n_storage: { shape: 'step', text: '3.4 TCP: socket storage<br/>created if absent' },
  q_dns: { shape: 'decision', text: '3.3 connect4 and<br/>port 53?' },
  q_proxy: { shape: 'decision', text: 'DNS proxy<br/>km_backend[0]?' },
  q_tcp: { shape: 'decision', text: '3.4 TCP?' },
  q_frontend: { shape: 'decision', text: '3.5 km_frontend<br/>[destination IP]?' },
  q_service: { shape: 'decision', text: '3.6 upstream id<br/>in km_service?' },
  q_direct: { shape: 'decision', text: '3.6 km_backend<br/>[upstream id]?' },
  q_svc_wp: { shape: 'decision', text: '3.7 service waypoint<br/>configured?' },
  q_policy: { shape: 'decision', text: '3.7 lb_policy:<br/>which priority group?' },
  n_draw: { shape: 'step', text: 'draw index = prandom mod count + 1<br/>(the model: one branch per index)' },
  q_endpoint: { shape: 'decision', text: 'km_endpoint<br/>[service, prio, index]?' },
  q_backend: { shape: 'decision', text: 'km_backend<br/>[backend uid]?' },
  q_backend_wp: { shape: 'decision', text: 'backend waypoint<br/>configured?' },
  q_port: { shape: 'decision', text: 'port slot i with<br/>service_port[i] = destination port?' },
  q_family: { shape: 'decision', text: "3.10 target writable in<br/>the socket's family?" },
} as const;

type NodeId = keyof typeof NODES | 'start' | 'n_tail';

const INNER_EDGES: readonly (readonly [NodeId, string, NodeId])[] = [
  ['start', '', 'q_control'],
  ['q_control', 'no', 'q_enrolled'],
  ['q_enrolled', 'yes', 'n_storage'],
  ['n_storage', '', 'q_dns'],
  ['q_dns', 'yes', 'q_proxy'],
  ['q_dns', 'no', 'q_tcp'],
  ['q_proxy', 'no, TCP', 'q_tcp'],
  ['q_proxy', 'yes: target = (proxy address, 53)', 'q_family'],
  ['q_tcp', 'yes', 'q_frontend'],
  ['q_frontend', 'hit', 'q_service'],
  ['q_service', 'no: a backend uid (direct pod access)', 'q_direct'],
  ['q_direct', 'waypoint configured: target = that waypoint', 'q_family'],
  ['q_service', 'yes', 'q_svc_wp'],
  ['q_svc_wp', 'yes: target = service waypoint', 'q_family'],
  ['q_svc_wp', 'no', 'q_policy'],
  ['q_policy', 'random, strict: prio 0 / failover: first non-empty group', 'n_draw'],
  ['n_draw', '', 'q_endpoint'],
  ['q_endpoint', 'found', 'q_backend'],
  ['q_backend', 'found', 'q_backend_wp'],
  ['q_backend_wp', 'yes: target = backend waypoint, port mapping skipped', 'q_family'],
  ['q_backend_wp', 'no', 'q_port'],
  ['q_port', 'first match: target = (backend address, target_port[i])', 'q_family'],
];

/** How a path treats the socket storage's existence; what it records follows from its result. */
type StorageCreation = 'none' | 'tcp' | 'any';

export interface PathDoc {
  /** Section(s) of kmesh-dataplane.md. */
  readonly section: string;
  /** When a pass takes this path. */
  readonly when: string;
  /** What happens to the destination. */
  readonly destination: string;
  readonly storage: StorageCreation;
  /** Where the path leaves the flowchart: the decision node and the edge's label. */
  readonly flow: { readonly from: keyof typeof NODES; readonly edge: string };
}

const UNCHANGED = 'unchanged';

export const PATH_DOCS: Readonly<Record<PassPath, PathDoc>> = {
  control: {
    section: '3.1',
    when: 'a control connect (interpretation.md, item 4), any protocol, before the enrolment check',
    destination: 'unchanged; the namespace is enrolled in km_manage (929) or withdrawn (930)',
    storage: 'none',
    flow: { from: 'q_control', edge: 'yes' },
  },
  'not-enrolled': {
    section: '3.2',
    when: 'the namespace cookie is not in km_manage',
    destination: UNCHANGED,
    storage: 'none',
    flow: { from: 'q_enrolled', edge: 'no' },
  },
  dns: {
    section: '3.3',
    when: 'connect4 to port 53, TCP or UDP, with a DNS proxy km_backend[0] holding an IPv4 address',
    destination: 'the IP becomes the proxy address, the port stays 53; the pass ends (interpretation.md, item 5)',
    storage: 'any',
    flow: { from: 'q_family', edge: 'DNS proxy' },
  },
  'dns-no-proxy': {
    section: '3.3',
    when: 'UDP connect4 to port 53 without km_backend[0] (TCP goes on routing)',
    destination: UNCHANGED,
    storage: 'none',
    flow: { from: 'q_proxy', edge: 'no, UDP' },
  },
  'udp-skip': {
    section: '3.4',
    when: 'a UDP connect that the DNS step did not take',
    destination: UNCHANGED,
    storage: 'none',
    flow: { from: 'q_tcp', edge: 'no' },
  },
  'frontend-miss': {
    section: '3.5',
    when: 'the destination IP (its lookup key, interpretation.md, item 2) is not in km_frontend',
    destination: UNCHANGED,
    storage: 'tcp',
    flow: { from: 'q_frontend', edge: 'miss' },
  },
  'direct-backend-missing': {
    section: '3.6',
    when: 'the upstream id is neither a service nor a backend',
    destination: UNCHANGED,
    storage: 'tcp',
    flow: { from: 'q_direct', edge: 'missing' },
  },
  'direct-backend': {
    section: '3.6',
    when: 'the upstream id is a backend (direct pod access) without a waypoint',
    destination: 'unchanged (a success with no rewrite)',
    storage: 'tcp',
    flow: { from: 'q_direct', edge: 'no waypoint' },
  },
  'direct-backend-waypoint': {
    section: '3.6 -> 3.9',
    when: 'the upstream id is a backend with a waypoint configured (interpretation.md, item 7)',
    destination: "the backend's waypoint (address, port), then a tail call",
    storage: 'tcp',
    flow: { from: 'q_family', edge: "direct backend's waypoint" },
  },
  'service-waypoint': {
    section: '3.7 -> 3.9',
    when: 'the service has a waypoint configured (interpretation.md, item 7)',
    destination: "the service's waypoint (address, port), then a tail call",
    storage: 'tcp',
    flow: { from: 'q_family', edge: 'service waypoint' },
  },
  'random-empty': {
    section: '3.7',
    when: 'random policy with count[0] = 0',
    destination: 'unchanged (a success with no rewrite)',
    storage: 'tcp',
    flow: { from: 'q_policy', edge: 'random, count[0] = 0' },
  },
  'strict-empty': {
    section: '3.7',
    when: 'strict policy with count[0] = 0, whatever the other groups hold',
    destination: UNCHANGED,
    storage: 'tcp',
    flow: { from: 'q_policy', edge: 'strict, count[0] = 0' },
  },
  'failover-empty': {
    section: '3.7',
    when: 'failover policy with every count 0',
    destination: UNCHANGED,
    storage: 'tcp',
    flow: { from: 'q_policy', edge: 'failover, every count 0' },
  },
  'unknown-policy': {
    section: '3.7',
    when: 'lb_policy is not 0, 1 or 2',
    destination: UNCHANGED,
    storage: 'tcp',
    flow: { from: 'q_policy', edge: 'any other policy' },
  },
  'endpoint-missing': {
    section: '3.7',
    when: 'the drawn index has no km_endpoint entry',
    destination: UNCHANGED,
    storage: 'tcp',
    flow: { from: 'q_endpoint', edge: 'missing' },
  },
  'backend-missing': {
    section: '3.7',
    when: "the endpoint's backend uid has no km_backend entry",
    destination: UNCHANGED,
    storage: 'tcp',
    flow: { from: 'q_backend', edge: 'missing' },
  },
  'backend-waypoint': {
    section: '3.7 -> 3.9',
    when: 'the drawn backend has a waypoint configured',
    destination: "the backend's waypoint (address, port; no port mapping), then a tail call",
    storage: 'tcp',
    flow: { from: 'q_family', edge: "backend's waypoint" },
  },
  'no-port-match': {
    section: '3.7',
    when: 'no service_port slot equals the destination port',
    destination: UNCHANGED,
    storage: 'tcp',
    flow: { from: 'q_port', edge: 'no slot' },
  },
  'family-mismatch': {
    section: '3.10',
    when: "the target cannot be written in the socket's family (an IPv6 target on AF_INET)",
    destination: UNCHANGED,
    storage: 'tcp',
    flow: { from: 'q_family', edge: 'no' },
  },
  random: {
    section: '3.7',
    when: 'random policy: a prio-0 backend, port mapped',
    destination: "(backend address, target_port[i]) in the socket's family",
    storage: 'tcp',
    flow: { from: 'q_family', edge: 'backend, random' },
  },
  strict: {
    section: '3.7',
    when: 'strict policy: a prio-0 backend, port mapped',
    destination: "(backend address, target_port[i]) in the socket's family",
    storage: 'tcp',
    flow: { from: 'q_family', edge: 'backend, strict' },
  },
  failover: {
    section: '3.7',
    when: 'failover policy: a backend of the first non-empty priority group, port mapped',
    destination: "(backend address, target_port[i]) in the socket's family",
    storage: 'tcp',
    flow: { from: 'q_family', edge: 'backend, failover' },
  },
};

/** Results that record the original destination (interpretation.md, item 3; section 3.8). */
export const RECORDING_RESULTS: readonly PassResult[] = ['kept', 'rewritten', 'waypoint'];

const STORAGE_TEXT: Record<StorageCreation, string> = {
  none: 'none created',
  tcp: 'created if absent (TCP)',
  any: 'created if absent (TCP and UDP)',
};

export function storageText(path: PassPath): string {
  const result = RESULT_OF_PATH[path];
  const parts = [STORAGE_TEXT[PATH_DOCS[path].storage]];
  if (PATH_DOCS[path].storage !== 'none') {
    parts.push(RECORDING_RESULTS.includes(result) ? 'original recorded unless already' : 'nothing recorded');
    if (result === 'waypoint') parts.push('via_waypoint set');
  }
  return parts.join('; ');
}

const RESULT_TEXT: Record<PassResult, string> = {
  untouched: 'the program did nothing to the connect (beyond enrolment for a control connect)',
  failed: 'routing gave up: no rewrite and nothing recorded; the connect goes where the destination points',
  kept: 'a success with no rewrite: the original destination is recorded',
  rewritten: 'the destination is rewritten to a backend or the DNS proxy and the original recorded',
  waypoint: 'the destination is rewritten to a waypoint, via_waypoint is set, and the program tail-calls itself',
};

const RESULT_ORDER: readonly PassResult[] = ['untouched', 'failed', 'kept', 'rewritten', 'waypoint'];

export function resultClassLines(): string[] {
  return RESULT_ORDER.map((r) => {
    const paths = PASS_PATHS.filter((p) => RESULT_OF_PATH[p] === r).map(code);
    return `- **${r}**: ${RESULT_TEXT[r]}. Paths: ${paths.join(', ')}.`;
  });
}

export function decisionTable(): string[] {
  return mdTable(
    ['Path', 'Section', 'Result', 'Taken when', 'Destination afterwards', 'Socket storage'],
    PASS_PATHS.map((p) => {
      const d = PATH_DOCS[p];
      return [code(p), d.section, RESULT_OF_PATH[p], d.when, d.destination, storageText(p)];
    }),
  );
}

// --- Mermaid -------------------------------------------------------------------------------------

/** Text inside a quoted Mermaid label: quotes as entities; no semicolons (statement ends). */
function mermaidText(text: string): string {
  return text.replace(/"/g, '#quot;').replace(/;/g, ',');
}

function pathNode(p: PassPath): string {
  return `p_${p.replace(/-/g, '_')}`;
}

function nodeDecl(id: NodeId): string {
  if (id === 'start') return 'start(["a pass on the socket\'s current destination"])';
  if (id === 'n_tail') {
    return `n_tail[["3.9 tail call: the next pass runs on the waypoint<br/>(at most ${TAIL_CALL_LIMIT} tail calls, ${TAIL_CALL_LIMIT + 1} passes)"]]`;
  }
  const n = NODES[id];
  const text = mermaidText(n.text);
  return n.shape === 'decision' ? `${id}{"${text}"}` : `${id}["${text}"]`;
}

function edge(from: string, label: string, to: string, dotted = false): string {
  const arrow = dotted ? '-.->' : '-->';
  return label ? `  ${from} ${arrow}|"${mermaidText(label)}"| ${to}` : `  ${from} ${arrow} ${to}`;
}

/** The decision flow of connect4/connect6 with every PassPath as a terminal node. */
export function flowchart(): string[] {
  const ids: NodeId[] = ['start', ...(Object.keys(NODES) as (keyof typeof NODES)[]), 'n_tail'];
  const lines = ['flowchart TD', ...ids.map((id) => `  ${nodeDecl(id)}`)];
  for (const p of PASS_PATHS) lines.push(`  ${pathNode(p)}(["${p}<br/>${RESULT_OF_PATH[p]}"])`);
  for (const [from, label, to] of INNER_EDGES) lines.push(edge(from, label, to));
  for (const p of PASS_PATHS) lines.push(edge(PATH_DOCS[p].flow.from, PATH_DOCS[p].flow.edge, pathNode(p)));
  const viaWaypoint = PASS_PATHS.filter((p) => RESULT_OF_PATH[p] === 'waypoint');
  for (const p of viaWaypoint) lines.push(edge(pathNode(p), '', 'n_tail'));
  lines.push(edge('n_tail', 'next pass', 'start', true));
  lines.push(
    '  classDef untouched fill:#eeeeee,stroke:#888888',
    '  classDef failed fill:#f8d7da,stroke:#b02a37',
    '  classDef kept fill:#d1e7dd,stroke:#146c43',
    '  classDef rewritten fill:#cfe2ff,stroke:#0a58ca',
    '  classDef waypoint fill:#fff3cd,stroke:#997404',
  );
  for (const r of RESULT_ORDER) {
    const members = PASS_PATHS.filter((p) => RESULT_OF_PATH[p] === r).map(pathNode);
    if (members.length) lines.push(`  class ${members.join(',')} ${r}`);
  }
  return lines;
}
