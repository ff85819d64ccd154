package esl

import "strings"

// endpoint is the directory user of a device's leg, as the switch dialled
// or authenticated it; "" when the event does not say (yet).
//
//   - A leg the switch calls: dialed_user, set by the user/ endpoint in the
//     leg's own variables before it rings. The switch also writes it on a
//     channel that runs bridge user/..., so a value appearing after the leg
//     answered names whom it dialled, not itself: only an unanswered leg's
//     counts, and the first one sticks.
//   - A device calling in: the user its credentials authenticated
//     (sip_auth_username, or user_name from the same directory lookup; a
//     verto login's user_name), never the From user, which the caller
//     chooses. Only what the channel's first event says counts: set_user
//     or a voicemail login set user_name later on any caller's channel.
//
// Loopback legs copy their originator's variables: they get none.
func endpoint(e *Event, st *chanState) string {
	name := e.Get("Channel-Name")
	if strings.HasPrefix(name, "loopback/") {
		return ""
	}
	switch e.Get("Call-Direction") {
	case "outbound":
		if st.answered || e.Get("Answer-State") == "answered" {
			return ""
		}
		if at := e.Get("Caller-Channel-Answered-Time"); at != "" && at != "0" {
			return ""
		}
		return e.Get("variable_dialed_user")
	case "inbound":
		if strings.HasPrefix(name, "verto.rtc/") {
			return e.Get("variable_user_name") // the verto login
		}
		if !strings.HasPrefix(name, "sofia/") {
			return ""
		}
		if v := e.Get("variable_sip_auth_username"); v != "" {
			return v
		}
		return e.Get("variable_user_name")
	}
	return ""
}

// device names a number that is the leg's own registered contact (a phone
// registering as 1000-0x5591f1b07bf0 is called at that contact, and shows
// it as its number) by the leg's directory user.
func (st *chanState) device(num string) string {
	if st.endpoint == "" || num == st.endpoint {
		return num
	}
	if c := contactUser(st.ch.Name); c != "" && num == c {
		return st.endpoint
	}
	return num
}

// contactUser is the user part of a sofia channel name:
// sofia/internal/1000-0x5591f1b07bf0@127.0.0.1:5261 -> 1000-0x5591f1b07bf0.
func contactUser(name string) string {
	rest, ok := strings.CutPrefix(name, "sofia/")
	if !ok {
		return ""
	}
	_, rest, ok = strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	user, _, _ := strings.Cut(rest, "@")
	return user
}
