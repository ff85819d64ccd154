// Package faults is ctibridge's fault suite: it runs the real `ctibridge
// serve` binary against the PBX simulators (ami/amitest, esl/esltest) and
// signature-checking webhook receivers, injects faults (SIGKILL, torn and
// half-open PBX links, PBX restarts, CRM outages and error answers, a
// locked, read-only or full disk, oversize and hostile input) and checks
// the promise that nothing committed is lost.
//
// The package holds tests only. The short versions run in `go test ./...`;
// `make faults` (CTIBRIDGE_FAULTS_LONG=1) runs the long ones and prints a
// table: scenario, runs, events sent, delivered, lost, duplicated and the
// longest recovery. README's "Guarantees" says what is promised.
package faults
