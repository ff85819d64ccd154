package phone

import "testing"

func TestE164(t *testing.T) {
	ru := New("RU", []string{"9"})
	us := New("US", nil)
	cases := []struct {
		n    *Normalizer
		raw  string
		want string
	}{
		{ru, "+74954451120", "+74954451120"},
		{ru, "84954451120", "+74954451120"},  // national trunk prefix 8
		{ru, "984954451120", "+74954451120"}, // outside-line 9, then national
		{ru, "0074954451120", "+74954451120"},
		{us, "(202) 555-0143", "+12025550143"},
		{us, "100", ""},       // an extension
		{us, "5551234", ""},   // too short to be a US number
		{us, "<unknown>", ""}, // Asterisk's placeholder
		{us, "12+34567", ""},
		{New("GB", nil), "020 7946 0018", "+442079460018"},
	}
	for _, c := range cases {
		if got := c.n.E164(c.raw); got != c.want {
			t.Errorf("%s E164(%q) = %q, want %q", c.n.Region, c.raw, got, c.want)
		}
	}
}

func FuzzE164(f *testing.F) {
	f.Add("+74954451120")
	f.Add("00441234")
	n := New("US", []string{"9", "8"})
	f.Fuzz(func(t *testing.T, s string) {
		if got := n.E164(s); got != "" && got[0] != '+' {
			t.Fatalf("E164(%q) = %q", s, got)
		}
	})
}
