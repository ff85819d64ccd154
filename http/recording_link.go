package http

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"mime"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
)

// publicRoutes registers the signed recording links before the /v1
// guards: a CRM's server fetches them through http.public_url, with a Host
// that is not loopback and without an API key; the token is the
// credential (RecordingLinks). The Origin check still runs first.
func (s *Server) publicRoutes() {
	s.app.Get(bridge.RecordingLinkPath+":token", s.recordingLink)
}

// Mount serves POST path (under /crm/, e.g. /crm/bitrix24/events) with a
// CRM's event handler, without an API key: h checks its CRM's own
// credential (Bitrix24: auth[application_token]). The Origin check still
// runs first, so a browser page cannot post to it; a server-to-server POST
// carries no Origin. h gets the request timeout as its deadline. Call it
// before Serve.
func (s *Server) Mount(path string, h nethttp.Handler) error {
	if !strings.HasPrefix(path, "/crm/") || strings.ContainsAny(path, ":*?#") || strings.Contains(path, "..") {
		return fmt.Errorf("http: mount %q: must be a fixed path under /crm/", path)
	}
	s.app.Post(path, s.mounted(h))
	return nil
}

// linkInstance stands for a link's path in answers and logs: the token is
// a credential and is never echoed nor logged.
const linkInstance = bridge.RecordingLinkPath + "{token}"

// recordingLink serves the recording a signed link names, under the same
// rules as GET /v1/calls/{id}/recording (RecordingsDir only, Range, a
// write deadline per chunk). A bad, tampered or expired token, a call
// without a recording and a missing file all get the same 404, which
// tells nothing that helps guessing and never a path.
func (s *Server) recordingLink(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	id, ok := s.RecordingLinks.Verify(c.Params("token"))
	if !ok || s.RecordingsDir == "" {
		return s.linkProblem(c, nil)
	}
	d := s.RequestTimeout
	if d <= 0 {
		d = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), d)
	rec, err := s.store.Conversation(ctx, id)
	cancel()
	if err != nil {
		if bridge.ErrorCode(err) != bridge.ENOTFOUND {
			s.log.Warn("recording link: store", "conversation", id, "err", err)
			return s.linkProblem(c, bridge.Errorf(bridge.EUNAVAILABLE, "the recording cannot be read now: try again later"))
		}
		return s.linkProblem(c, nil)
	}
	if rec.Call.Recording == nil || rec.Call.Recording.Path == "" {
		return s.linkProblem(c, nil)
	}
	f, info, err := openRecording(s.RecordingsDir, rec.Call.Recording.Path)
	if err != nil {
		s.log.Info("recording link: not served", "conversation", id, "reason", bridge.ErrorMessage(err))
		return s.linkProblem(c, nil)
	}
	return s.sendRecording(c, f, info, func(err error) error { return s.linkProblem(c, err) })
}

// linkProblem answers err (nil: the one 404 of every refused link) with
// the token left out.
func (s *Server) linkProblem(c *fiber.Ctx, err error) error {
	if err == nil {
		err = bridge.Errorf(bridge.ENOTFOUND, "no recording at this link: it is invalid or has expired")
	}
	status, body := s.problem(linkInstance, err)
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return c.Status(status).Send(body)
}

// sendRecording streams an opened recording with Range support (players
// seek), for the recording route and the recording links. refuse answers
// a range outside the file (each route its own way: a link's problem never
// shows its path).
func (s *Server) sendRecording(c *fiber.Ctx, f *os.File, info fs.FileInfo, refuse func(error) error) error {
	size := info.Size()
	ct := mime.TypeByExtension(filepath.Ext(info.Name()))
	if ct == "" {
		ct = "application/octet-stream"
	}
	modified := strings.Replace(info.ModTime().UTC().Format(time.RFC1123), "UTC", "GMT", 1)
	c.Set(fiber.HeaderContentType, ct)
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	c.Set(fiber.HeaderLastModified, modified)
	c.Set(fiber.HeaderContentDisposition, contentDisposition(info.Name()))
	start, n, partial, ok := parseRange(c.Get(fiber.HeaderRange), size)
	if ir := c.Get(fiber.HeaderIfRange); ir != "" && ir != modified {
		start, n, partial, ok = 0, size, false, true // changed since: the whole file
	}
	if !ok {
		f.Close()
		c.Set(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(size, 10))
		return refuse(fiber.NewError(fiber.StatusRequestedRangeNotSatisfiable,
			"the range is outside the recording's "+strconv.FormatInt(size, 10)+" bytes"))
	}
	status := fiber.StatusOK
	if partial {
		status = fiber.StatusPartialContent
		c.Set(fiber.HeaderContentRange, "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+n-1, 10)+"/"+strconv.FormatInt(size, 10))
	}
	c.Status(status)
	return c.SendStream(struct {
		io.Reader
		io.Closer
	}{&deadlineReader{r: io.NewSectionReader(f, start, n), conn: c.Context().Conn(), d: s.writeTimeout}, f}, int(n))
}

// contentDisposition names the file for the download. The name may come
// from the dialplan (a caller's name in it): quoted by the MIME rules
// (RFC 2231 for non-ASCII), never pasted between quotes, and left out when
// it cannot be written (a control character).
func contentDisposition(name string) string {
	if v := mime.FormatMediaType("inline", map[string]string{"filename": name}); v != "" {
		return v
	}
	return "inline"
}

// mounted adapts a net/http handler, with the request timeout as its
// deadline.
func (s *Server) mounted(h nethttp.Handler) fiber.Handler {
	d := s.RequestTimeout
	if d <= 0 {
		d = 20 * time.Second
	}
	return adaptor.HTTPHandler(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		// Not r.Context()'s cancellation: it is fasthttp's RequestCtx, whose
		// Done races with the server's shutdown; fasthttp never cancels it
		// for a request anyway.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), d)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
}
