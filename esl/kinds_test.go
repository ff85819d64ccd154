package esl

import "github.com/ctibridge/ctibridge/bridge"

var kindNames = map[bridge.ChannelEventKind]string{
	bridge.ChanNew: "New", bridge.ChanUpdate: "Update", bridge.ChanDialplan: "Dialplan", bridge.ChanDial: "Dial",
	bridge.ChanDialEnd: "DialEnd", bridge.ChanAnswer: "Answer", bridge.ChanBridgeEnter: "BridgeEnter",
	bridge.ChanBridgeLeave: "BridgeLeave", bridge.ChanHold: "Hold", bridge.ChanUnhold: "Unhold",
	bridge.ChanHangup: "Hangup", bridge.ChanRename: "Rename", bridge.ChanLocalPair: "LocalPair",
	bridge.ChanLocalOptimized: "LocalOptimized", bridge.ChanVar: "Var", bridge.ChanTransfer: "Transfer",
	bridge.ChanQueueJoin: "QueueJoin", bridge.ChanQueueLeave: "QueueLeave", bridge.ChanQueueAbandon: "QueueAbandon",
	bridge.ChanAgentCalled: "AgentCalled", bridge.ChanAgentConnect: "AgentConnect",
	bridge.ChanAgentRingNoAnswer: "AgentRingNoAnswer", bridge.ChanRecordStart: "RecordStart",
	bridge.ChanRecordStop: "RecordStop", bridge.ChanOriginateFailed: "OriginateFailed", bridge.ChanAgentState: "AgentState",
	bridge.ChanHangupRequest: "HangupRequest", bridge.ChanPark: "Park", bridge.ChanUnpark: "Unpark", bridge.ChanPickup: "Pickup",
}

func kindName(k bridge.ChannelEventKind) string { return kindNames[k] }
