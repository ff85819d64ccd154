package http

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/gofiber/fiber/v2"
)

// history lists past and present calls, newest first, a page at a time.
func (s *Server) history(c *fiber.Ctx) error {
	var f bridge.HistoryFilter
	err := onlyQuery(c, "from", "to", "limit", "number", "agent", "direction", "disposition", "cursor")
	if err != nil {
		return err
	}
	if f.From, err = queryTime(c, "from"); err != nil {
		return err
	}
	if f.To, err = queryTime(c, "to"); err != nil {
		return err
	}
	if f.Limit, err = queryLimit(c, 50, 500); err != nil {
		return err
	}
	f.Number, f.Agent, f.Direction, f.Disposition, f.Cursor = c.Query("number"), c.Query("agent"), c.Query("direction"), c.Query("disposition"), c.Query("cursor")
	if f.Number != "" {
		if err := bridge.CheckText("number", f.Number, 64, ""); err != nil {
			return err
		}
	}
	if f.Agent != "" {
		if err := bridge.CheckExtension("agent", f.Agent); err != nil {
			return err
		}
	}
	switch bridge.Direction(f.Direction) {
	case "", bridge.DirectionInbound, bridge.DirectionOutbound, bridge.DirectionInternal, bridge.DirectionUnknown:
	default:
		return bridge.FieldError("direction", "must be inbound, outbound, internal or unknown")
	}
	switch bridge.Disposition(f.Disposition) {
	case "", bridge.DispositionAnswered, bridge.DispositionNoAnswer, bridge.DispositionBusy, bridge.DispositionFailed, bridge.DispositionCancelled:
	default:
		return bridge.FieldError("disposition", "must be answered, no_answer, busy, failed or cancelled")
	}
	// An agent key reads only the calls it handled: its own extension,
	// whatever the query says (another agent's is an empty page).
	if p, _ := bridge.PrincipalFrom(c.UserContext()); p.Agent != "" {
		if f.Agent != "" && f.Agent != p.Agent {
			return c.JSON(fiber.Map{"calls": []bridge.Call{}})
		}
		f.Agent = p.Agent
	}
	// A tenant key reads its tenant's calls only.
	f.Tenant = bridge.TenantOf(c.UserContext())
	recs, next, err := s.store.History(c.UserContext(), f)
	if err != nil {
		return err
	}
	calls := make([]bridge.Call, 0, len(recs))
	for _, r := range recs {
		calls = append(calls, r.Call)
	}
	body := fiber.Map{"calls": calls}
	if next != "" {
		body["next_cursor"] = next
	}
	return c.JSON(body)
}

// recording streams a call's recording, with Range support (players seek).
// Only files under RecordingsDir are served: the path comes from the PBX,
// and os.Root refuses '..' and symlinks that lead out of the directory.
func (s *Server) recording(c *fiber.Ctx) error {
	if s.RecordingsDir == "" {
		return bridge.Errorf(bridge.ENOTIMPLEMENTED, "recordings are not served: recordings_dir is not configured")
	}
	id := c.Params("id")
	rec, err := s.store.Conversation(c.UserContext(), id)
	if err != nil {
		return err
	}
	if !bridge.SeesTenant(c.UserContext(), rec.Call.Tenant) || !s.agentHadLeg(c, rec) {
		return &bridge.Error{Code: bridge.ENOTFOUND, Field: "id", Message: "no call " + id}
	}
	if rec.Call.Recording == nil || rec.Call.Recording.Path == "" {
		return &bridge.Error{Code: bridge.ENOTFOUND, Field: "id", Message: "call " + id + " has no recording"}
	}
	f, info, err := openRecording(s.RecordingsDir, rec.Call.Recording.Path)
	if err != nil {
		return err
	}
	return s.sendRecording(c, f, info, func(err error) error { return err })
}

// deadlineReader pushes the connection's write deadline forward before
// each chunk it hands to the writer: the server's WriteTimeout would
// otherwise cut a long recording on a slow link as a whole.
type deadlineReader struct {
	r    io.Reader
	conn net.Conn
	d    time.Duration
}

func (d *deadlineReader) Read(b []byte) (int, error) {
	_ = d.conn.SetWriteDeadline(time.Now().Add(d.d))
	return d.r.Read(b)
}

func openRecording(dir, path string) (*os.File, fs.FileInfo, error) {
	outside := bridge.Errorf(bridge.EFORBIDDEN, "the recording is outside recordings_dir: not served")
	if !filepath.IsAbs(path) {
		return nil, nil, outside
	}
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, nil, outside
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, bridge.Errorf(bridge.EUNAVAILABLE, "recordings_dir cannot be read")
	}
	defer root.Close()
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer, pinning an OS thread past any request timeout; a device may
	// block too. What is opened is checked (fstat) before it is read.
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, bridge.Errorf(bridge.ENOTFOUND, "the recording file is not there (not written yet, or removed)")
	} else if err != nil {
		return nil, nil, outside // e.g. a symlink out of the directory
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, bridge.Errorf(bridge.EUNAVAILABLE, "the recording file cannot be read")
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, bridge.Errorf(bridge.EFORBIDDEN, "the recording is not a regular file (a %s): not served", fileKind(info.Mode()))
	}
	return f, info, nil
}

// fileKind names what a path is when it is not a regular file.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// parseRange reads a single "bytes=" range. A missing, malformed or
// multi-range header means the whole file (RFC 9110 lets a server ignore
// Range); ok is false only for a range past the end.
func parseRange(h string, size int64) (start, n int64, partial, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, size, false, true
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, size, false, true
	}
	if a == "" { // the last b bytes
		k, err := strconv.ParseInt(b, 10, 64)
		if err != nil || k < 0 {
			return 0, size, false, true
		}
		if k == 0 || size == 0 {
			return 0, 0, false, false
		}
		k = min(k, size)
		return size - k, k, true, true
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 {
		return 0, size, false, true
	}
	if first >= size {
		return 0, 0, false, false
	}
	last := size - 1
	if b != "" {
		l, err := strconv.ParseInt(b, 10, 64)
		if err != nil || l < first {
			return 0, size, false, true
		}
		last = min(l, size-1)
	}
	return first, last - first + 1, true, true
}

// agentHadLeg reports whether the request may see a past call: always,
// unless it is an agent key's, which sees the calls its agent handled or
// was rung for (an event of the call names it), nothing else.
func (s *Server) agentHadLeg(c *fiber.Ctx, rec bridge.ConversationRecord) bool {
	p, _ := bridge.PrincipalFrom(c.UserContext())
	if p.Agent == "" || rec.Call.Agent != nil && rec.Call.Agent.Extension == p.Agent {
		return true
	}
	evs, err := s.store.ConversationEvents(c.UserContext(), rec.Call.ID)
	if err != nil {
		return false
	}
	for _, r := range evs {
		if mentionsAgent(r.Payload, p.Agent) {
			return true
		}
	}
	return false
}
