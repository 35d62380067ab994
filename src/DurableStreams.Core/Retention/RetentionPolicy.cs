namespace DurableStreams.Core.Retention;

/// <summary>
/// How much of a stream to keep: data older than <see cref="MaxAge"/>, and data beyond the last <see cref="MaxBytes"/>
/// bytes, is dropped from the front. Null on an axis means unbounded on it; a policy with both null keeps everything.
/// </summary>
public sealed record RetentionPolicy(TimeSpan? MaxAge, long? MaxBytes)
{
    /// <summary>Keeps everything (the default when no policy matches).</summary>
    public static RetentionPolicy KeepAll { get; } = new(null, null);

    /// <summary>True when the policy can drop anything by age or size.</summary>
    public bool DropsData => MaxAge is not null || MaxBytes is not null;

    /// <summary>
    /// State-Protocol compaction for the stream (<c>"compaction": "state"</c> in a rule), or null for none (the default).
    /// Independent of <see cref="DropsData"/>: a policy may compact and keep everything else.
    /// </summary>
    public Compaction.CompactionPolicy? Compaction { get; init; }
}

/// <summary>One configured rule: the streams it covers (a <see cref="StreamGlob"/> pattern) and their policy.</summary>
public sealed record RetentionRule(string Streams, RetentionPolicy Policy);

/// <summary>
/// The policies of one server: rules by stream-name pattern, first match wins, then the server-wide default. Immutable;
/// every store and the retention job resolve a name through the same table.
/// </summary>
public sealed class RetentionPolicies
{
    private readonly RetentionRule[] _rules;

    public RetentionPolicies(IEnumerable<RetentionRule> rules, RetentionPolicy? fallback = null)
    {
        ArgumentNullException.ThrowIfNull(rules);
        _rules = [.. rules];
        Default = fallback ?? RetentionPolicy.KeepAll;
        Any = Default.DropsData || _rules.Any(r => r.Policy.DropsData);
        AnyCompaction = Default.Compaction is not null || _rules.Any(r => r.Policy.Compaction is not null);
    }

    /// <summary>No policy at all: every stream keeps everything (today's behaviour, and the default).</summary>
    public static RetentionPolicies None { get; } = new([]);

    public IReadOnlyList<RetentionRule> Rules => _rules;

    /// <summary>The policy for names no rule matches.</summary>
    public RetentionPolicy Default { get; }

    /// <summary>True when some stream may have data dropped by age or size (stores skip all retention bookkeeping otherwise).</summary>
    public bool Any { get; }

    /// <summary>True when some stream is compacted (<see cref="RetentionPolicy.Compaction"/>).</summary>
    public bool AnyCompaction { get; }

    /// <summary>The policy for the stream <paramref name="name"/>: the first matching rule's, else <see cref="Default"/>.</summary>
    public RetentionPolicy Resolve(string name)
    {
        foreach (var rule in _rules)
        {
            if (StreamGlob.IsMatch(rule.Streams, name))
            {
                return rule.Policy;
            }
        }
        return Default;
    }
}
