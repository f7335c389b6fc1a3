package fsm

// LockHeld reports whether anyone holds the FSM lock, read or write. Only
// meaningful when nothing else is using the FSM at the same time.
func (f *FSM) LockHeld() bool {
	if f.mu.TryLock() {
		f.mu.Unlock()
		return false
	}
	return true
}

// DecodeBody is the FSM's command body decoder (for the heartbeat batch's
// hand decoder, issue 14).
func DecodeBody(data []byte, v any) error { return decodeBody(data, v) }
