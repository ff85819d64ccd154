package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/esl/esltest"
	"github.com/staskobzar/goami2"
)

// scenarios are the captured calls simulate may play, besides "mix" (the
// demo's calls in turn): an allowlist, so a capture of a login or of a
// list answer is never played as a call.
var scenarios = map[string][]string{
	"asterisk": {"inbound-call-basic", "queue-call", "blind-transfer", "mixmonitor", "hangup-action", "originate-busy",
		"originate-exten", "originate-failure", "musiconhold"},
	"freeswitch": {"basic-call-plain", "basic-call-json", "blind-transfer", "record", "kill", "callcenter", "hold-loopback",
		"originate-failure"},
}

const simulateHead = `Usage: ctibridge simulate --pbx asterisk|freeswitch [--listen 127.0.0.1:5038] [--calls N] [--rate R]
                          [--scenario NAME] [--username U] [--secret S]

Runs a simulated Asterisk (AMI) or FreeSWITCH (ESL) alone, for a ctibridge
you configure yourself: it speaks the real protocol, plays real captured
calls under fresh ids, and answers actions (an Originate plays a captured
click-to-call) as the demo does. Point pbx.address, pbx.username and
pbx.secret at it. Ctrl-C or SIGTERM stops it.

Scenarios: mix (default: the demo's calls in turn), or one of
  asterisk:   ` + "{{asterisk}}" + `
  freeswitch: ` + "{{freeswitch}}" + `
`

// routineAction are the AMI actions a client sends by itself (login,
// keepalive, the state it reads after connecting): not worth a line.
var routineAction = map[string]bool{"login": true, "logoff": true, "ping": true, "events": true, "filter": true,
	"coreshowchannels": true, "queuestatus": true, "status": true, "bridgelist": true, "coresettings": true, "corestatus": true}

// simPBX is a simulated PBX of either kind, as demo and simulate use it.
type simPBX struct {
	addr  string
	play  func(ctx context.Context, name string) error
	ready func(ctx context.Context) error // a client can receive events
	close func()
}

// newSimPBX starts a simulated PBX on listen. pace is the AMI delay
// between events; ESL plays the capture's own timing scaled by eslPace.
// say, when set, reports the actions it answers.
func newSimPBX(pbxType, listen, username, secret string, pace time.Duration, eslPace float64, say func(string, ...any)) (*simPBX, error) {
	switch pbxType {
	case "asterisk":
		var sim *amitest.Server
		var err error
		sim, err = amitest.NewServer(amitest.ServerOptions{Addr: listen, Username: username, Secret: secret,
			OnAction: func(a *goami2.Message) bool {
				switch act := a.Field("Action"); {
				case say == nil:
				case act == "Originate":
				case routineAction[strings.ToLower(act)]:
				default:
					say("answering %s", act)
				}
				if a.Field("Action") == "Originate" {
					if say != nil {
						say("answering Originate %s → %s@%s with the captured click-to-call", a.Field("Channel"), a.Field("Exten"), a.Field("Context"))
					}
					go playOriginate(sim, a, pace)
				}
				return false
			}})
		if err != nil {
			return nil, fmt.Errorf("simulated Asterisk: %w", err)
		}
		return &simPBX{
			addr: sim.Addr(),
			play: func(ctx context.Context, name string) error {
				err := sim.Play(name, amitest.PlayOptions{Rewrite: true, Pace: pace})
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return err
			},
			ready: func(ctx context.Context) error { return sim.Wait(ctx, func() bool { return sim.LoggedIn() > 0 }) },
			close: func() { sim.Close() },
		}, nil
	case "freeswitch":
		sim, err := esltest.NewServer(esltest.Options{Password: secret, API: func(cmd, args string) (string, bool) {
			if say != nil && cmd != "status" && cmd != "show" && cmd != "version" {
				say("answering %s %s", cmd, args)
			}
			return "", false // the simulator's own answer
		}})
		if err != nil {
			return nil, fmt.Errorf("simulated FreeSWITCH: %w", err)
		}
		// esltest listens on 127.0.0.1:0 only: relay the address asked for.
		addr := sim.Addr()
		var relay *tcpRelay
		if listen != "" && listen != "127.0.0.1:0" {
			if relay, err = newTCPRelay(listen, sim.Addr()); err != nil {
				sim.Close()
				return nil, fmt.Errorf("simulated FreeSWITCH: %w", err)
			}
			addr = relay.ln.Addr().String()
		}
		return &simPBX{
			addr: addr,
			play: func(ctx context.Context, name string) error {
				frames, err := sim.Prepare(name, esltest.PlayOptions{Rewrite: true})
				if err != nil {
					return err
				}
				// Stream frame by frame so Ctrl-C stops it at once.
				var prev time.Duration
				for i, f := range frames {
					if i > 0 && f.At > prev && eslPace > 0 {
						select {
						case <-ctx.Done():
							return ctx.Err()
						case <-time.After(time.Duration(float64(f.At-prev) * eslPace)):
						}
					}
					prev = max(prev, f.At)
					sim.Stream(frames[i:i+1], 0)
				}
				return ctx.Err()
			},
			ready: func(ctx context.Context) error { return sim.WaitSubscribed(ctx, 1) },
			close: func() {
				if relay != nil {
					relay.close()
				}
				sim.Close()
			},
		}, nil
	}
	return nil, usageError{fmt.Errorf("--pbx must be asterisk or freeswitch, got %q", pbxType)}
}

// simulate runs a simulated PBX until ctx ends.
func simulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	head := strings.NewReplacer("{{asterisk}}", strings.Join(scenarios["asterisk"], ", "),
		"{{freeswitch}}", strings.Join(scenarios["freeswitch"], ", ")).Replace(simulateHead)
	fs := newFlagSet("simulate", head)
	pbxType := fs.String("pbx", "", "asterisk or freeswitch (required)")
	listen := fs.String("listen", "", "address to listen on (default 127.0.0.1:5038 for asterisk, 127.0.0.1:8021 for freeswitch; port 0 picks one)")
	calls := fs.Int("calls", 0, "calls to play, then keep answering actions (0: play until stopped)")
	rate := fs.Float64("rate", 0, "new calls per second, overlapping (0: one after the other)")
	scenario := fs.String("scenario", "mix", "what to play: mix, or a capture named below")
	username := fs.String("username", "bridge", "AMI username to accept (asterisk)")
	secret := fs.String("secret", "", "AMI secret or ESL password to accept (default: a random one, printed)")
	pace := fs.Duration("pace", 50*time.Millisecond, "delay between AMI events")
	if err := parseArgs(fs, args, stdout, stderr); err != nil {
		return err
	}
	allowed, ok := scenarios[*pbxType]
	if !ok {
		return usageError{fmt.Errorf("--pbx must be asterisk or freeswitch, got %q", *pbxType)}
	}
	if *calls < 0 || *rate < 0 || *rate > 1000 {
		return usageError{errors.New("--calls must be 0 or more, --rate from 0 to 1000")}
	}
	mix := demoCalls[*pbxType]
	if *scenario != "mix" {
		if !slices.Contains(allowed, *scenario) {
			return usageError{fmt.Errorf("--scenario %q is not one of mix, %s", *scenario, strings.Join(allowed, ", "))}
		}
		mix = []string{*scenario}
	}
	if *listen == "" {
		*listen = map[string]string{"asterisk": "127.0.0.1:5038", "freeswitch": "127.0.0.1:8021"}[*pbxType]
	}
	if *secret == "" {
		*secret = randomToken()
	}
	out := &lockedWriter{w: stdout}
	say := func(format string, a ...any) {
		fmt.Fprintf(out, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
	}
	sim, err := newSimPBX(*pbxType, *listen, *username, *secret, *pace, 0.2, say)
	if err != nil {
		return err
	}
	defer sim.close()
	// Closing the simulator ends a play in progress at once.
	defer context.AfterFunc(ctx, sim.close)()

	if *pbxType == "asterisk" {
		say("simulated Asterisk (AMI) on %s: username %s, secret %s", sim.addr, *username, *secret)
	} else {
		say("simulated FreeSWITCH (ESL) on %s: password %s", sim.addr, *secret)
	}
	say("waiting for a client to log in (pbx.address: %s)", sim.addr)
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := 1; *calls == 0 || n <= *calls; n++ {
		if err := sim.ready(ctx); err != nil {
			return stopErr(ctx, err)
		}
		name := mix[(n-1)%len(mix)]
		say("call %d: playing %s", n, name)
		if *rate == 0 {
			if err := sim.play(ctx, name); err != nil {
				return stopErr(ctx, fmt.Errorf("playing %s: %w", name, err))
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sim.play(ctx, name); err != nil && ctx.Err() == nil {
				say("call %d: %s stopped: %v", n, name, err)
			}
		}()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(float64(time.Second) / *rate)):
		}
	}
	wg.Wait()
	say("played %d call(s); still answering actions until Ctrl-C", *calls)
	<-ctx.Done()
	return ctx.Err()
}

// randomToken is a password for a simulator nobody else should log in to.
func randomToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// stopErr is ctx's error once ctx ended (the simulator was closed under
// whatever was running), err otherwise.
func stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// tcpRelay accepts on one address and relays each connection to another.
type tcpRelay struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func newTCPRelay(listen, target string) (*tcpRelay, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	r := &tcpRelay{ln: ln, target: target, conns: map[net.Conn]bool{}}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

func (r *tcpRelay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.conns[c], r.conns[up] = true, true
		r.mu.Unlock()
		r.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer r.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

func (r *tcpRelay) close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
