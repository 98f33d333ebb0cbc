package pipeline

// WorkerProgress is the ban worker's health for a watchdog: how many bans
// wait in its queue and how many batches it has finished since it started.
// Bans queued while the batch count stands still between two looks mean
// the worker is stuck (an Apply that never returns); an empty queue is
// healthy however long the worker idles. It costs two atomic loads.
func (p *Pipeline) WorkerProgress() (queued int, batches uint64) {
	return len(p.queue), p.batches.Load()
}
