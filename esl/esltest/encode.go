package esltest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// frameBytes wraps a body the way mod_event_socket frames events.
func frameBytes(contentType string, body []byte) []byte {
	b := make([]byte, 0, len(body)+64)
	b = fmt.Appendf(b, "Content-Length: %d\nContent-Type: %s\n\n", len(body), contentType)
	return append(b, body...)
}

// replyFrame is a command/reply with a Reply-Text.
func replyFrame(text string) []byte {
	return []byte("Content-Type: command/reply\nReply-Text: " + text + "\n\n")
}

// apiFrame is an api/response: Content-Type first, as FreeSWITCH writes it.
func apiFrame(body string) []byte {
	return fmt.Appendf(nil, "Content-Type: api/response\nContent-Length: %d\n\n%s", len(body), body)
}

const goodbye = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"

var disconnectFrame = fmt.Appendf(nil, "Content-Type: text/disconnect-notice\nContent-Length: %d\n\n%s", len(goodbye), goodbye)

// encode renders an event in a format: plain headers are URL-encoded like
// switch_url_encode does; a body follows an inner Content-Length (plain) or
// goes in "_body" (json).
func encode(e *Event, format string) []byte {
	var b bytes.Buffer
	if format == "json" {
		b.WriteByte('{')
		for i, h := range e.Headers {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, h.Name)
			b.WriteByte(':')
			writeJSONString(&b, h.Value)
		}
		if e.Body != "" {
			fmt.Fprintf(&b, `,"Content-Length":"%d","_body":`, len(e.Body))
			writeJSONString(&b, e.Body)
		}
		b.WriteByte('}')
		return frameBytes("text/event-json", b.Bytes())
	}
	for _, h := range e.Headers {
		if h.Name == "Content-Length" {
			continue
		}
		b.WriteString(h.Name)
		b.WriteString(": ")
		b.WriteString(urlEncode(h.Value))
		b.WriteByte('\n')
	}
	if e.Body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\n\n%s", len(e.Body), e.Body)
	} else {
		b.WriteByte('\n')
	}
	return frameBytes("text/event-plain", b.Bytes())
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false) // cJSON does not escape <, > and &
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode's newline
}

// urlEncode is switch_url_encode: control and non-ASCII bytes and
// SWITCH_URL_UNSAFE become %XX, except a '%' already starting a valid %XX.
func urlEncode(s string) string {
	const unsafe = "\r\n #%&+:;<=>?@[\\]^`{|}\""
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(c)
			continue
		}
		if c < ' ' || c > '~' || strings.IndexByte(unsafe, c) >= 0 {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
