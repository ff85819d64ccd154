package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// Recordings configure the signed recording links CRMs fetch recordings
// from (GET /v1/recordings/<token>, no API key: the link is the credential).
type Recordings struct {
	// LinkTTL is how long a link given to a CRM works.
	LinkTTL time.Duration `koanf:"link_ttl"`
	// LinkSecret signs the links (32+ characters). A secret: set it from
	// CTIBRIDGE_RECORDINGS__LINK_SECRET. The same secret after a restart
	// keeps links working; changing it revokes every link given out.
	LinkSecret string `koanf:"link_secret"`
}

// LinksEnabled reports whether recording links are signed and served: a
// public URL to put in them, a directory to serve from and a secret.
func (c *Config) LinksEnabled() bool {
	return c.HTTP.PublicURL != "" && c.HTTP.RecordingsDir != "" && c.Recordings.LinkSecret != ""
}

func (c *Config) checkRecordings(add func(*Error)) {
	if c.HTTP.PublicURL != "" {
		if err := bridge.CheckPublicURL(c.HTTP.PublicURL); err != nil {
			add(&Error{"http.public_url", fmt.Sprintf("%s, got %q", err, c.HTTP.PublicURL)})
		}
	}
	r := c.Recordings
	if r.LinkTTL < time.Minute || r.LinkTTL > 30*24*time.Hour {
		add(&Error{"recordings.link_ttl", fmt.Sprintf("must be from 1m to 720h (a CRM fetches the recording once, soon after the call), got %s", r.LinkTTL)})
	}
	// The reasons never repeat the secret.
	switch {
	case r.LinkSecret == "" && c.HTTP.PublicURL != "" && c.HTTP.RecordingsDir != "":
		add(&Error{"recordings.link_secret", "is required to sign recording links (http.public_url and http.recordings_dir are set): set CTIBRIDGE_RECORDINGS__LINK_SECRET to 32+ random characters (openssl rand -hex 32)"})
	case r.LinkSecret != "" && len(r.LinkSecret) < bridge.MinRecordingLinkSecret:
		add(&Error{"recordings.link_secret", fmt.Sprintf("must be at least %d characters (openssl rand -hex 32), got %d", bridge.MinRecordingLinkSecret, len(r.LinkSecret))})
	case strings.ContainsFunc(r.LinkSecret, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		add(&Error{"recordings.link_secret", "must not contain spaces or control characters"})
	}
}
