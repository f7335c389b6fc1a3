package fsm

// KnownChannelType reports whether t is a channel type the FSM accepts
// (issue 15 added alertmanager, slack, pagerduty, ntfy and email).
func KnownChannelType(t string) bool {
	switch t {
	case ChannelWebhook, ChannelTelegram, ChannelAlertmanager, ChannelSlack, ChannelPagerDuty, ChannelNtfy, ChannelEmail:
		return true
	}
	return false
}
