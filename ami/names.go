package ami

import (
	"strings"

	"github.com/ctibridge/ctibridge/bridge"
)

// named reads what Asterisk's channel names say about a channel: the
// endpoint it stands for (PJSIP/100-0000001a: 100; SIP/trunk-00000001:
// trunk), and for a Local channel (Local/100@agents-00000001;1) that it is
// plumbing, the context it dials into and its other half's name.
func named(ch *bridge.Channel) {
	tech, rest, ok := strings.Cut(ch.Name, "/")
	if !ok {
		return
	}
	// The unique suffix: "-0000001a", and for a Local channel
	// "-00000001;1".
	base := rest
	if i := strings.LastIndexByte(base, '-'); i > 0 {
		base = base[:i]
	}
	if strings.EqualFold(tech, "local") {
		ch.Local = true
		ch.Endpoint, ch.Home, _ = strings.Cut(base, "@")
		// FreePBX Follow Me (findmefollow-ringallv2): Local/FMPR-<ext> rings
		// the extension's own devices for the prering; it stands for <ext>.
		// Its Local/FMGL-<numbers>, dialled in the same Dial, rings the
		// extension's other numbers (a mobile) for it.
		if ext, ok := strings.CutPrefix(ch.Endpoint, "FMPR-"); ok && ext != "" {
			ch.Endpoint = ext
		}
		ch.FollowMe = strings.HasPrefix(ch.Endpoint, "FMGL-")
		switch {
		case strings.HasSuffix(ch.Name, ";1"):
			ch.Partner = strings.TrimSuffix(ch.Name, ";1") + ";2"
		case strings.HasSuffix(ch.Name, ";2"):
			ch.Partner = strings.TrimSuffix(ch.Name, ";2") + ";1"
		}
		return
	}
	ch.Endpoint = base
}

// memberAgent is the extension a queue member interface names
// (PJSIP/100, Local/100@agents, SIP/100): what its calls' channels are
// named after.
func memberAgent(iface string) string {
	_, rest, ok := strings.Cut(iface, "/")
	if !ok {
		return ""
	}
	ext, _, _ := strings.Cut(rest, "@")
	return ext
}
