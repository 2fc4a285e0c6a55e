package stream

// prologueWriter is what the prologue rules need of a sender: whether it may still write, and
// how it queues a prologue frame. Both senders implement it; their wmu is held around every
// call.
type prologueWriter interface {
	writable() error
	putPrologue(errText *string) error
}

// prologueState holds the prologue rules both senders share (spec §6): at most one prologue, a
// success prologue sent by the first item when the handler sent none, and no item after an
// error prologue.
type prologueState struct {
	prologueSent bool
	errPrologue  bool
}

// prologue is Prologue: it writes the prologue unless one was sent.
func (p *prologueState) prologue(w prologueWriter, errText *string) error {
	if err := w.writable(); err != nil {
		return err
	}
	if p.prologueSent {
		return newError(CodeWrite, TextPrologueSent, nil)
	}
	return p.writePrologue(w, errText)
}

func (p *prologueState) writePrologue(w prologueWriter, errText *string) error {
	p.prologueSent = true
	p.errPrologue = errText != nil
	return w.putPrologue(errText)
}

// beforeItem checks that an item may be written, and writes the success prologue first when
// none was sent.
func (p *prologueState) beforeItem(w prologueWriter, data []byte) error {
	if err := w.writable(); err != nil {
		return err
	}
	if len(data) == 0 {
		return newError(CodeWrite, TextEmptyItem, nil)
	}
	if !p.prologueSent {
		if err := p.writePrologue(w, nil); err != nil {
			return err
		}
	}
	if p.errPrologue {
		return newError(CodeClosed, TextAfterErrorPrologue, nil)
	}
	return nil
}
