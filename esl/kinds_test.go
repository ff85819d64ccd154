package esl

import "github.com/ctibridge/ctibridge/bridge"

func kindName(k bridge.ChannelEventKind) string { return k.String() }
