package ami

// ChunkSize is the most the Client's consumer takes off its queue at once.
const ChunkSize = chunkSize
