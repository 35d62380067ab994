namespace DurableStreams.Core.Retention;

/// <summary>
/// When a stream's data was appended, sampled: (position, time) pairs, each the start of an append and the time it was
/// committed, at least <see cref="Interval"/> apart, plus the time of the last append. Everything below a sample's
/// position was appended at or before its time, so it is old once that time is. Not thread-safe: the owning store
/// guards it with the stream's lock.
/// </summary>
public sealed class AppendTimes(TimeSpan interval)
{
    private readonly List<Sample> _samples = [];

    /// <summary>The least time between two samples (see <see cref="RetentionRules.SampleInterval"/>).</summary>
    public TimeSpan Interval { get; } = interval;

    /// <summary>When the last append was committed, or null before the first.</summary>
    public DateTimeOffset? LastAppend { get; private set; }

    /// <summary>The samples, oldest first (for stores that persist them).</summary>
    public IReadOnlyList<Sample> Samples => _samples;

    /// <summary>
    /// Records an append that started at <paramref name="position"/> at <paramref name="time"/>. Returns true when a
    /// sample was added (a persistent store then writes it), false when the previous one is recent enough.
    /// </summary>
    public bool Record(long position, DateTimeOffset time)
    {
        LastAppend = time;
        // An append at the last sample's own position (a fork's first append after its creation sample) is sampled too
        // once an interval has passed: a store that restores the last append time as "last sample + interval" would
        // otherwise age it from the fork's creation and drop it early. A store keyed by position then keeps the later
        // time for it (the inherited range ages from then: kept longer, never shorter).
        if (_samples.Count > 0 && (time - _samples[^1].Time < Interval || position < _samples[^1].Position))
        {
            return false;
        }
        _samples.Add(new Sample(position, time));
        return true;
    }

    /// <summary>Adds a sample read back from storage (in order), and the last append time if later.</summary>
    public void Restore(Sample sample)
    {
        if (_samples.Count == 0 || sample.Position > _samples[^1].Position)
        {
            _samples.Add(sample);
        }
        if (LastAppend is null || sample.Time > LastAppend)
        {
            LastAppend = sample.Time;
        }
    }

    /// <summary>Restores the last append time read back from storage.</summary>
    public void RestoreLastAppend(DateTimeOffset time) => LastAppend = LastAppend is { } known && known > time ? known : time;

    /// <summary>
    /// The highest position below which everything was appended at or before <paramref name="cutoff"/>:
    /// <paramref name="tail"/> when the last append is that old, else the last sample at or before it, else 0.
    /// </summary>
    public long DroppableBelow(DateTimeOffset cutoff, long tail)
    {
        if (LastAppend is { } last && last <= cutoff)
        {
            return tail;
        }
        var below = 0L;
        foreach (var sample in _samples)
        {
            if (sample.Time > cutoff)
            {
                break;
            }
            below = sample.Position;
        }
        return below;
    }

    /// <summary>Forgets samples below <paramref name="start"/> (the data they describe is gone); returns how many.</summary>
    public int DropBelow(long start)
    {
        var count = 0;
        while (count < _samples.Count && _samples[count].Position < start)
        {
            count++;
        }
        _samples.RemoveRange(0, count);
        return count;
    }

    /// <summary>One sample: an append started at <see cref="Position"/> at <see cref="Time"/>.</summary>
    public readonly record struct Sample(long Position, DateTimeOffset Time);
}
