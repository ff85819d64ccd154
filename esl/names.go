package esl

import (
	"regexp"
	"strings"

	"github.com/ctibridge/ctibridge/bridge"
)

// named reads what FreeSWITCH's channel names say, where the switch said
// nothing better (Endpoint from dialed_user or the authenticated user is
// kept): sofia/internal/1000@10.0.0.1 stands for 1000; a loopback half
// (loopback/1000/default-a, -b) is plumbing dialling 1000 in default. The
// halves of one loopback are named alike across calls, so they pair only
// by their uuids (ChanLocalPair), never by name: no Partner.
func named(ch *bridge.Channel) {
	tech, rest, ok := strings.Cut(ch.Name, "/")
	if !ok {
		return
	}
	var ext string
	switch strings.ToLower(tech) {
	case "loopback":
		ch.Local = true
		rest = strings.TrimSuffix(strings.TrimSuffix(rest, "-a"), "-b")
		ext, ch.Home, _ = strings.Cut(rest, "/")
	case "sofia", "verto.rtc":
		profile, r, ok := strings.Cut(rest, "/")
		if ok { // drop the profile
			rest = r
		}
		if strings.EqualFold(tech, "sofia") && profile == "gateway" {
			// sofia/gateway/<gateway>/<number>: the number dialled through
			// the gateway, not the gateway's name; a carrier's leg.
			ch.Trunk = true
			if _, r, ok := strings.Cut(rest, "/"); ok {
				rest = r
			}
		}
		ext, _, _ = strings.Cut(rest, "@")
	default:
		ext = rest
	}
	if ch.Endpoint == "" {
		ch.Endpoint = ext
	}
}

// namedEvent applies named to an event's channels.
func namedEvent(ev *bridge.ChannelEvent) {
	named(&ev.Channel)
	if ev.Peer != nil {
		p := *ev.Peer
		named(&p)
		ev.Peer = &p
	}
}

var digitRun = regexp.MustCompile(`[0-9]+`)

// callcenterAgent is the extension a mod_callcenter agent name stands for:
// agents are named after their extension ("1000@default",
// "agent1000@default"): the digits of the name before its domain.
func callcenterAgent(name string) string {
	user, _, _ := strings.Cut(name, "@")
	return digitRun.FindString(user)
}
