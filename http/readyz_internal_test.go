package http

import (
	"strings"
	"testing"
)

// /readyz turns the adapters' and the store's errors, as they word them,
// into fixed sentences: what is wrong, never the address, user or path.
func TestReadinessReasons(t *testing.T) {
	const addr, user, path = "10.20.30.40:5038", "crm-bridge", "/var/lib/ctibridge/ctibridge.db"
	for _, c := range []struct{ err, want string }{
		{"ami: connect to " + addr + ": dial tcp " + addr + ": connect: connection refused", "pbx: not connected: connection refused"},
		{"ami: login to " + addr + " as " + user + " refused: Authentication failed", "pbx: login refused"},
		{"esl " + addr + ": esl: authentication failed (wrong event socket password)", "pbx: login refused"},
		{"esl: connection rejected: Access Denied, go away.", "pbx: not connected: the PBX rejected the connection"},
		{"ami: connect to pbx.internal:5038: dial tcp: lookup pbx.internal on 127.0.0.53:53: no such host", "pbx: not connected: host not found"},
		{"ami: connect to " + addr + ": dial tcp " + addr + ": i/o timeout", "pbx: not connected: timed out"},
		{"ami: connect to " + addr + ": dial tcp " + addr + ": connect: no route to host", "pbx: not connected: network unreachable"},
		{"ami: connect to " + addr + ": tls: failed to verify certificate: x509: certificate signed by unknown authority", "pbx: not connected: TLS handshake failed"},
		{"ami: no answer to Ping from " + addr + " within 10s: link presumed dead", "pbx: link lost: no answer to keepalive"},
		{"esl: link dead: silent for 30s and no answer to a probe within 10s", "pbx: link lost: no answer to keepalive"},
		{"ami: " + addr + " closed the connection: EOF", "pbx: link lost: the connection was closed"},
		{"ami: read from " + addr + ": read tcp 127.0.0.1:40000->" + addr + ": read: connection reset by peer", "pbx: link lost: the connection was closed"},
		{"ami: read login response from " + addr + ": EOF", "pbx: link lost: the connection was closed"},
		{"esl " + addr + ": connection rejected by the switch's ACL (apply-inbound-acl in event_socket.conf.xml must allow this host): Access Denied, go away.",
			"pbx: not connected: the PBX's ACL rejected this address"},
		{"ami: login to " + addr + ": ami: peer is not an Asterisk manager: greeting \"SSH-2.0-OpenSSH_9.2\"", "pbx: not connected: the peer is not an Asterisk manager (check pbx.address and pbx.type)"},
		{"esl " + addr + ": expected auth/request, got \"\" ", "pbx: not connected: the peer is not a FreeSWITCH event socket (check pbx.address and pbx.type)"},
		{"ami: " + addr + " sent ami: line too long: more than 65536 bytes without a line break", "pbx: link lost: the PBX sent more than the size limit"},
		{"esl " + addr + ": esl: frame body over the size limit: 4788919 > 4194304 bytes", "pbx: link lost: the PBX sent more than the size limit"},
		{"esl " + addr + ": esl: malformed frame: header line \"garbage\"", "pbx: link lost: the PBX sent a malformed frame"},
		{"something new at " + addr + " for " + user, "pbx: not connected (details in the log)"},
	} {
		got := pbxReason(c.err)
		if got != c.want || strings.Contains(got, "10.20") || strings.Contains(got, user) {
			t.Errorf("pbxReason(%q) = %q, want %q", c.err, got, c.want)
		}
	}
	for _, c := range []struct{ err, want string }{
		{"store " + path + ": the disk is full (database or disk is full)", "store: not writable: the disk is full"},
		{"store " + path + ": disk I/O error (disk I/O error)", "store: not writable: disk I/O error"},
		{"store " + path + ": the database file or its directory is read-only (attempt to write a readonly database)", "store: not writable: the database is read-only"},
		{"store " + path + ": another process holds a lock on the database (waited 5s)", "store: not writable: another process holds a lock on the database"},
		{"store " + path + ": a write did not finish in time: another process holds a lock on the database, or the disk is slow", "store: not writable: a write did not finish in time"},
		{"store " + path + ": permission denied (unable to open database file)", "store: not writable: permission denied"},
		{"store " + path + ": the database file is corrupt (database disk image is malformed)", "store: the database file is corrupt"},
		{"store " + path + ": something else", "store: not writable (details in the log)"},
	} {
		got := storeReason(c.err)
		if got != c.want || strings.Contains(got, "/var/lib") {
			t.Errorf("storeReason(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}
