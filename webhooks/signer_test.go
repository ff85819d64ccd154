package webhooks

import (
	"sync"
	"testing"
	"time"
)

// The pooled signer must give what a fresh HMAC gives, every time: a state
// put back dirty, or a prefix left in its buffer, would sign the next
// request wrongly.
func TestSignerReusesStatesCleanly(t *testing.T) {
	const (
		spec     = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		specID   = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		specTS   = 1614265330
		specBody = `{"test": 2432232314}`
		specSig  = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	keys, err := signingKeys(spec, "whsec_"+"dGhlIG90aGVyIHNlY3JldCBrZXkgMzIgYnl0ZXMhIQ==")
	if err != nil {
		t.Fatal(err)
	}
	one, two := newSigner(keys[:1]), newSigner(keys)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				// A longer id and body in between leave more in the pooled
				// buffer than the spec's message needs.
				id := specID + "-" + time.Duration(g*1000+i).String()
				body := []byte(specBody + specBody[:i%len(specBody)])
				if got, want := two.header(id, specTS+int64(i), body), signatureHeader(keys, id, specTS+int64(i), body); got != want {
					t.Errorf("two keys: %s, want %s", got, want)
				}
				if got := one.header(specID, specTS, []byte(specBody)); got != specSig {
					t.Errorf("spec vector: %s, want %s", got, specSig)
				}
			}
		})
	}
	wg.Wait()
}
