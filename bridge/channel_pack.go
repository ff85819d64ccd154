package bridge

import "encoding/binary"

// PackedChannel is a Channel kept in little memory. An adapter that
// remembers thousands of channels that hung up (for the late events that
// name them) keeps them packed: a Channel is 296 bytes of fields, most of
// them empty strings, and each value an allocation of its own; packed, its
// strings are one string (each value after its length) and the rest fits
// a map's slot (values over 128 bytes are allocated apart).
type PackedChannel struct {
	strs   string
	vars   map[string]string
	listed *Listed
	local  bool
	trunk  bool
	follow bool
}

// Pack packs ch. Its Vars map and Listed are kept, not copied: adapters
// never change either once a channel carries it.
func Pack(ch Channel) PackedChannel {
	var room [32]*string
	fields := ch.stringFields(room[:0])
	n := 0
	for _, p := range fields {
		n += binary.MaxVarintLen64 + len(*p)
	}
	buf := make([]byte, 0, n)
	for _, p := range fields {
		buf = binary.AppendUvarint(buf, uint64(len(*p)))
		buf = append(buf, *p...)
	}
	return PackedChannel{strs: string(buf), vars: ch.Vars, listed: ch.Listed, local: ch.Local, trunk: ch.Trunk, follow: ch.FollowMe}
}

// Unpack returns the channel Pack packed. Its values share one string.
func (p PackedChannel) Unpack() Channel {
	ch := Channel{Vars: p.vars, Listed: p.listed, Local: p.local, Trunk: p.trunk, FollowMe: p.follow}
	var room [32]*string
	rest := p.strs
	for _, f := range ch.stringFields(room[:0]) {
		n, k := uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			break // never: Pack wrote it; the zero PackedChannel is empty
		}
		*f, rest = rest[k:k+int(n)], rest[k+int(n):]
	}
	return ch
}

// uvarint is binary.Uvarint of a string's bytes, with no copy.
func uvarint(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		b := s[i]
		if b < 0x80 {
			return x | uint64(b)<<shift, i + 1
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

// ID is the packed channel's ID, sharing the packed string: a map keyed by
// it costs no string of its own.
func (p PackedChannel) ID() string {
	n, k := uvarint(p.strs)
	if k <= 0 || n > uint64(len(p.strs)-k) {
		return ""
	}
	return p.strs[k : k+int(n)]
}
