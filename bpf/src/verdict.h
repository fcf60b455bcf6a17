/* SPDX-License-Identifier: GPL-2.0 */
/* How a pass ends (docs/interpretation.md item 3). */
#ifndef KM_VERDICT_H
#define KM_VERDICT_H

enum km_verdict {
	KM_UNTOUCHED = 0,	/* control connect, not enrolled, UDP not DNS, frontend miss */
	KM_FAILED,		/* missing entry, unknown policy, no endpoint, no port slot, wrong family */
	KM_KEPT,		/* success with no rewrite: original recorded */
	KM_REWRITTEN,		/* rewritten to a backend or the DNS proxy */
	KM_WAYPOINT,		/* rewritten to a waypoint: the program tail-calls itself */
	KM_CONTINUE,		/* internal: this step does not apply, go on with the next */
};

#endif /* KM_VERDICT_H */
