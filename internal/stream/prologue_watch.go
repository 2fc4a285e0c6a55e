package stream

import (
	"sync"
	"time"
)

// prologueWatch fails the streams whose prologue does not come within the server's
// PrologueTimeout of their acknowledgement. Every stream waits as long, so the streams watched,
// kept in the order they were acknowledged, are also in deadline order: one timer, armed for
// the earliest deadline, serves them all. A timer per stream cost an allocation and two
// timer-heap updates per request.
type prologueWatch struct {
	timeout time.Duration

	mu         sync.Mutex
	head, tail *Stream // linked through Stream.watch
	timer      *time.Timer
	armed      bool           // the timer will fire (at or before the head's deadline)
	stopped    bool           // the server closed: no timer any more
	expiring   sync.WaitGroup // callbacks past the stopped check; stop waits for them
}

// watchLink is a stream's place in the prologue watch. Guarded by prologueWatch.mu.
type watchLink struct {
	next, prev *Stream
	deadline   time.Time
	queued     bool
}

// add watches s. The stream's timerWG counts it until unwatch takes it back or the timeout
// has failed it. s.mu is held (the lock order is s.mu, then the watch's).
func (pw *prologueWatch) add(s *Stream) {
	s.timerWG.Add(1)
	pw.mu.Lock()
	defer pw.mu.Unlock()
	now := time.Now() // under the lock: deadlines are appended in order
	s.watch = watchLink{prev: pw.tail, deadline: now.Add(pw.timeout), queued: true}
	if pw.tail != nil {
		pw.tail.watch.next = s
	} else {
		pw.head = s
	}
	pw.tail = s
	if !pw.armed && !pw.stopped {
		pw.armed = true
		if pw.timer == nil {
			pw.timer = time.AfterFunc(pw.timeout, pw.expire)
		} else {
			pw.timer.Reset(pw.timeout)
		}
	}
}

// remove stops watching s (its prologue came, or it ended). s.mu is held.
func (pw *prologueWatch) remove(s *Stream) {
	pw.mu.Lock()
	queued := s.watch.queued
	if queued {
		pw.unlinkLocked(s)
	}
	pw.mu.Unlock()
	if queued {
		s.timerWG.Done() // taken back before the timeout: nothing runs for it
	}
}

func (pw *prologueWatch) unlinkLocked(s *Stream) {
	l := &s.watch
	if l.prev != nil {
		l.prev.watch.next = l.next
	} else {
		pw.head = l.next
	}
	if l.next != nil {
		l.next.watch.prev = l.prev
	} else {
		pw.tail = l.prev
	}
	*l = watchLink{}
}

// expire is the timer's callback: it fails the streams past their deadline and sets the timer
// for the next one.
func (pw *prologueWatch) expire() {
	var due []*Stream
	pw.mu.Lock()
	if pw.stopped {
		pw.mu.Unlock()
		return
	}
	pw.expiring.Add(1)
	defer pw.expiring.Done()
	pw.armed = false
	now := time.Now()
	for pw.head != nil && !now.Before(pw.head.watch.deadline) {
		s := pw.head
		pw.unlinkLocked(s)
		due = append(due, s)
	}
	if pw.head != nil {
		pw.armed = true
		pw.timer.Reset(pw.head.watch.deadline.Sub(now))
	}
	pw.mu.Unlock()
	for _, s := range due {
		s.terminate(newError(CodeTimeout, TextPrologueTimeout, nil), byTimeout)
		s.timerWG.Done()
	}
}

// stop disarms the timer for good and waits for a callback still failing streams; the streams
// still watched are ended by their owners.
func (pw *prologueWatch) stop() {
	pw.mu.Lock()
	pw.stopped = true
	if pw.timer != nil {
		pw.timer.Stop()
	}
	pw.mu.Unlock()
	pw.expiring.Wait()
}
