using DurableStreams.Protocol;

namespace DurableStreams.Core;

/// <summary>
/// A store that copies committed bytes straight into a caller's buffer — for the server, the response's own memory —
/// instead of lending its buffers for the caller to copy. Optional beside <see cref="IStreamStore"/>; use
/// <see cref="DirectReads.ReadIntoAsync"/>, which falls back to <see cref="IStreamStore.ReadAsync"/> for other stores.
/// </summary>
public interface IDirectReadStore
{
    /// <summary>
    /// Copies the stream's bytes at [<paramref name="position"/>, position + destination.Length), as stored, into
    /// <paramref name="destination"/>. <see cref="ReadStatus.Ok"/> only when every byte was committed and copied
    /// (checked as any read is); <see cref="ReadStatus.OffsetBeyondTail"/> when the range reaches past the committed tail.
    /// </summary>
    ValueTask<ReadStatus> ReadIntoAsync(string name, long position, Memory<byte> destination, CancellationToken cancellationToken = default);

    /// <summary>
    /// Where a read of up to <paramref name="maxBytes"/> from <paramref name="position"/> should end, for a caller that
    /// reads a long range in several reads: the store may answer short of position + maxBytes (never at or before
    /// <paramref name="position"/>) so that reads end on its own boundaries and the next one does not read and check a
    /// cut unit again. A hint only: any end reads correctly. Default: position + maxBytes.
    /// </summary>
    long ReadEnd(string name, long position, int maxBytes) => position + maxBytes;
}

/// <summary>Positioned reads of an exact, already committed range, for any store.</summary>
public static class DirectReads
{
    /// <summary>
    /// Fills <paramref name="destination"/> with the stream's bytes from <paramref name="position"/>: through
    /// <see cref="IDirectReadStore"/> where the store has it, otherwise by reading and copying. Ok only when all of them
    /// were there.
    /// </summary>
    public static async ValueTask<ReadStatus> ReadIntoAsync(this IStreamStore store, string name, long position, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        if (store is IDirectReadStore direct)
        {
            return await direct.ReadIntoAsync(name, position, destination, cancellationToken);
        }
        var filled = 0;
        while (filled < destination.Length)
        {
            var at = position + filled;
            using var read = await store.ReadAsync(name, new ReadRequest(OffsetQuery.At(new StreamOffset(at)), destination.Length - filled), cancellationToken);
            if (read.Status != ReadStatus.Ok)
            {
                return read.Status;
            }
            if (read.Start.Position != at || read.Length <= 0 || read.Length > destination.Length - filled)
            {
                // The tail is short of the range (or the store answered another one).
                return ReadStatus.OffsetBeyondTail;
            }
            foreach (var chunk in read.Chunks)
            {
                chunk.CopyTo(destination[filled..]);
                filled += chunk.Length;
            }
        }
        return ReadStatus.Ok;
    }
}
