package ami

import "testing"

// The number an Originate's dial string names, as chan_pjsip reads it
// (chan_pjsip.c request: endpoint/URI or number@endpoint).
func TestDialledNumber(t *testing.T) {
	for ds, want := range map[string]string{
		"PJSIP/5551234@trunk":                          "5551234",
		"5551234@trunk":                                "5551234",
		"PJSIP/trunk/sip:5551234@carrier.example":      "5551234",
		"trunk/sips:+4930123456@carrier;transport=tls": "+4930123456",
		"PJSIP/trunk/5551234":                          "5551234",
		"PJSIP/100":                                    "100",
		"trunk":                                        "",
		"PJSIP/trunk/sip:alice@example.com":            "",
		"":                                             "",
		"+":                                            "",
		"sip:@host":                                    "",
	} {
		if got := dialledNumber(ds); got != want {
			t.Errorf("dialledNumber(%q) = %q, want %q", ds, got, want)
		}
	}
}
