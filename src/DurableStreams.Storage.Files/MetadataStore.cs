using DurableStreams.Core;
using LightningDB;

namespace DurableStreams.Storage.Files;

/// <summary>A stream as found in LMDB at start-up.</summary>
internal sealed record LoadedStream(StreamMeta Meta, byte[]? State, long? LastAccessTicks, List<(string Id, ProducerState State)> Producers);

/// <summary>
/// The LMDB environment of a data directory: stream names, structure, writer state, frame index and access times, each
/// in its own database. Writes happen only in the group-commit role (one thread at a time; each LMDB write transaction
/// begins and commits within one call on one thread, as LMDB requires); reads use short read-only transactions from any
/// thread (NoThreadLocalStorage).
/// </summary>
internal sealed class MetadataStore : IDisposable
{
    private readonly LightningEnvironment _env;
    private readonly LightningDatabase _names;
    private readonly LightningDatabase _meta;
    private readonly LightningDatabase _state;
    private readonly LightningDatabase _frames;
    private readonly LightningDatabase _access;
    private readonly LightningDatabase _control;
    private readonly LightningDatabase _producers;
    private readonly LightningDatabase _times;
    private readonly LightningDatabase _forks;
    private readonly LightningDatabase _expiring;
    private static readonly byte[] s_logGenerationKey = "log-generation"u8.ToArray();
    private static readonly byte[] s_indexVersionKey = "index-version"u8.ToArray();
    private static readonly byte[] s_empty = [];

    /// <summary>
    /// The version of the derived indexes (<c>forks</c>, <c>expiring</c>) and of the state format every record is in;
    /// a directory without it is indexed (and its version 1 state records split) once, at its first open.
    /// </summary>
    private const byte IndexVersion = 1;
    private static readonly StreamConfiguration s_noConfiguration = new("", null, null, null, null, 0);

    /// <summary>
    /// Records read by <see cref="LoadStream"/> and <see cref="LoadFrames"/> after which the map's pages are given back
    /// (<see cref="ReleaseMappedPages"/>); 16,384 frame records are about 0.5–1 MB of LMDB pages.
    /// </summary>
    private readonly int _releaseEveryRecords;

    /// <summary>The LMDB map in this process (read-only shared mapping of <c>data.mdb</c>); null where unknown.</summary>
    private NativeIo.Mapping? _map;
    private readonly Lock _mapGate = new();
    private long _recordsSinceRelease;
    private long _releases;

    /// <param name="path">The environment directory.</param>
    /// <param name="mapSize">Maximum size of the map.</param>
    /// <param name="mode">
    /// None opens LMDB without syncs (a system crash may lose or damage the metadata); every other mode commits durably.
    /// </param>
    /// <param name="releaseEveryRecords">Records loaded between two releases of the map's resident pages.</param>
    public MetadataStore(string path, long mapSize, DurabilityMode mode, int releaseEveryRecords = 16_384)
    {
        _releaseEveryRecords = Math.Max(1, releaseEveryRecords);
        NativeIo.RegisterLmdbResolver();
        PrivateFiles.CreateDirectory(path);
        _env = new LightningEnvironment(path, new EnvironmentConfiguration { MapSize = mapSize, MaxDatabases = 16, MaxReaders = 1024 });
        var flags = EnvironmentOpenFlags.NoThreadLocalStorage | EnvironmentOpenFlags.NoReadAhead;
        // LMDB is written at checkpoints (and recovery), not per append: the commit log carries durability between them.
        if (mode == DurabilityMode.None)
        {
            flags |= EnvironmentOpenFlags.NoSync;
        }
        _env.Open(flags, PrivateFiles.LmdbMode);
        using var tx = _env.BeginTransaction();
        var create = new DatabaseConfiguration { Flags = DatabaseOpenFlags.Create };
        _names = tx.OpenDatabase("names", create);
        _meta = tx.OpenDatabase("meta", create);
        _state = tx.OpenDatabase("state", create);
        _frames = tx.OpenDatabase("frames", create);
        _access = tx.OpenDatabase("access", create);
        _control = tx.OpenDatabase("control", create);
        _producers = tx.OpenDatabase("producers", create);
        _times = tx.OpenDatabase("times", create);
        _forks = tx.OpenDatabase("forks", create);
        _expiring = tx.OpenDatabase("expiring", create);
        tx.Commit().ThrowOnError();
        // Without WriteMap LMDB maps data.mdb read-only and shared (writes go through the file), so dropping the map's
        // resident pages only drops this process's view of the page cache: the next access faults them back in.
        _map = NativeIo.FindReadOnlySharedMapping(Path.Combine(path, "data.mdb"));
    }

    /// <summary>How many times the map's pages were given back (for tests and diagnostics).</summary>
    internal long MappedPagesReleases => Interlocked.Read(ref _releases);

    /// <summary>
    /// Gives the LMDB map's resident pages back (<c>madvise(MADV_DONTNEED)</c> on the read-only shared mapping): the
    /// pages of records read to load streams and frame indexes stay in the page cache but no longer count in the
    /// process's resident memory, which otherwise grows with the number of frames read (issue 20). Safe while readers
    /// run: a page they touch again is faulted back from the page cache with the same bytes. False where the mapping
    /// is unknown (not Linux, or LMDB mapped the file writable).
    /// </summary>
    internal bool ReleaseMappedPages()
    {
        lock (_mapGate)
        {
            if (_map is not { } map || !NativeIo.DropResidentPages(map))
            {
                return false;
            }
            Interlocked.Increment(ref _releases);
            return true;
        }
    }

    /// <summary>Counts records read into memory and gives the map's pages back every <see cref="_releaseEveryRecords"/>.</summary>
    private void CountRecordsRead(int records)
    {
        if (_map is null || Interlocked.Add(ref _recordsSinceRelease, records) < _releaseEveryRecords)
        {
            return;
        }
        Interlocked.Exchange(ref _recordsSinceRelease, 0);
        ReleaseMappedPages();
    }

    public string Version => _env.Version?.ToString() ?? "unknown";

    /// <summary>One stream record by id, with its state, last persisted access time and producers; null when absent.</summary>
    public LoadedStream? LoadStream(long id)
    {
        var loaded = LoadStreamRecords(id);
        if (loaded is not null)
        {
            CountRecordsRead(1 + loaded.Producers.Count);
        }
        return loaded;
    }

    private LoadedStream? LoadStreamRecords(long id)
    {
        var idKey = Records.IdKey(id);
        using var tx = _env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        var (metaCode, _, value) = tx.Get(_meta, idKey);
        if (metaCode != MDBResultCode.Success)
        {
            return null;
        }
        var meta = Records.DecodeMeta(value.AsSpan());
        var (stateCode, _, state) = tx.Get(_state, idKey);
        var (accessCode, _, access) = tx.Get(_access, idKey);
        return new LoadedStream(
            meta,
            stateCode == MDBResultCode.Success ? state.CopyToNewArray() : null,
            accessCode == MDBResultCode.Success ? Records.DecodeTicks(access.AsSpan()) : null,
            LoadProducers(tx, idKey));
    }

    /// <summary>The id the <c>names</c> database gives <paramref name="name"/>, or null.</summary>
    public long? FindId(string name)
    {
        using var tx = _env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        var (code, _, value) = tx.Get(_names, Records.NameKey(name));
        return code == MDBResultCode.Success ? Records.ReadId(value.AsSpan()) : null;
    }

    /// <summary>The highest stream id with a record (ids are big-endian keys, so it is the last one), or 0.</summary>
    public long MaxId()
    {
        using var tx = _env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        using var cursor = tx.CreateCursor(_meta);
        var (code, key, _) = cursor.Last();
        return code == MDBResultCode.Success ? Records.ReadId(key.AsSpan()) : 0;
    }

    /// <summary>How many stream records fork from stream <paramref name="id"/> (live, soft-deleted or detached).</summary>
    public int CountForks(long id)
    {
        using var tx = _env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        var prefix = Records.IdKey(id);
        using var cursor = tx.CreateCursor(_forks);
        var count = 0;
        var code = cursor.SetRange(prefix);
        while (code == MDBResultCode.Success && cursor.GetCurrent().key.AsSpan().StartsWith(prefix))
        {
            count++;
            code = cursor.Next().resultCode;
        }
        return count;
    }

    /// <summary>
    /// The streams holding a name that are not soft-deleted, by a cursor over <c>names</c> (each name's meta read for
    /// its flags; long names are keyed by hash, so the name comes from the meta).
    /// </summary>
    public List<(long Id, string Name)> LiveNames()
    {
        var result = new List<(long, string)>();
        using var tx = _env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        using var cursor = tx.CreateCursor(_names);
        foreach (var (_, value) in cursor.AsEnumerable())
        {
            var id = Records.ReadId(value.AsSpan());
            var (code, _, meta) = tx.Get(_meta, value.CopyToNewArray());
            if (code == MDBResultCode.Success && Records.DecodeMeta(meta.AsSpan()) is { SoftDeleted: false, Detached: false } decoded)
            {
                result.Add((id, decoded.Name));
            }
        }
        return result;
    }

    /// <summary>
    /// The streams past their expiry at <paramref name="now"/> (by their last persisted access time) that still hold
    /// their name: a cursor over <c>expiring</c>, whose values carry each stream's TTL, Expires-At and creation time,
    /// so only the expired ones' <c>meta</c> is read. <paramref name="skip"/> leaves out streams the caller decides.
    /// <paramref name="next"/> is the earliest expiry of the others (<see cref="DateTimeOffset.MaxValue"/> if none).
    /// </summary>
    public List<(long Id, string Name)> ExpiredStreams(DateTimeOffset now, Func<long, bool> skip, out DateTimeOffset next)
    {
        var result = new List<(long, string)>();
        next = DateTimeOffset.MaxValue;
        using var tx = _env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        using var cursor = tx.CreateCursor(_expiring);
        foreach (var (key, value) in cursor.AsEnumerable())
        {
            var id = Records.ReadId(key.AsSpan());
            if (skip(id) || value.AsSpan().Length != 24)
            {
                continue;
            }
            var (ttl, expiresAt, lastAccess) = Records.DecodeExpiry(value.AsSpan());
            var idKey = key.CopyToNewArray();
            if (ttl is not null)
            {
                var (accessCode, _, access) = tx.Get(_access, idKey);
                if (accessCode == MDBResultCode.Success)
                {
                    lastAccess = new DateTimeOffset(Records.DecodeTicks(access.AsSpan()), TimeSpan.Zero);
                }
            }
            if (!StreamState.IsExpired(ttl, expiresAt, now, lastAccess))
            {
                var at = expiresAt ?? DateTimeOffset.MaxValue;
                if (ttl is { } seconds && seconds < (at - lastAccess).TotalSeconds)
                {
                    at = lastAccess.AddSeconds(seconds);
                }
                next = at < next ? at : next;
                continue;
            }
            var (code, _, meta) = tx.Get(_meta, idKey);
            if (code == MDBResultCode.Success && Records.DecodeMeta(meta.AsSpan()) is { SoftDeleted: false, Detached: false } decoded)
            {
                result.Add((id, decoded.Name));
            }
        }
        return result;
    }

    /// <summary>
    /// Brings a data directory written by an earlier build up to <see cref="IndexVersion"/>, once: splits version 1
    /// state records (every producer inline) into version 2 plus one producer record each, and builds the
    /// <c>forks</c> and <c>expiring</c> indexes from the meta records, in one write transaction. Later opens read one
    /// control key. Returns how many state records were split and whether anything was done.
    /// </summary>
    public (int Migrated, bool Indexed) EnsureIndexes()
    {
        using (var tx = _env.BeginTransaction(TransactionBeginFlags.ReadOnly))
        {
            var (code, _, value) = tx.Get(_control, s_indexVersionKey);
            if (code == MDBResultCode.Success && value.AsSpan() is [IndexVersion])
            {
                return (0, false);
            }
        }
        var migrated = MigrateInlineProducers();
        Write(w =>
        {
            var metas = new List<StreamMeta>();
            using (var cursor = w.Transaction.CreateCursor(_meta))
            {
                foreach (var (_, value) in cursor.AsEnumerable())
                {
                    metas.Add(Records.DecodeMeta(value.AsSpan()));
                }
            }
            foreach (var meta in metas)
            {
                w.PutIndexes(meta);
            }
            w.Transaction.Put(_control, s_indexVersionKey, new byte[] { IndexVersion }).ThrowOnError();
        });
        return (migrated, true);
    }

    private List<(string, ProducerState)> LoadProducers(LightningTransaction tx, byte[] idKey)
    {
        var producers = new List<(string, ProducerState)>();
        using var cursor = tx.CreateCursor(_producers);
        var code = cursor.SetRange(idKey);
        while (code == MDBResultCode.Success)
        {
            var (_, key, value) = cursor.GetCurrent();
            if (!key.AsSpan().StartsWith(idKey))
            {
                break;
            }
            producers.Add(Records.DecodeProducer(value.AsSpan()));
            code = cursor.Next().resultCode;
        }
        return producers;
    }

    /// <summary>
    /// Moves version 1 state records (every producer inline, written by earlier builds) to version 2 plus one producer
    /// record each, in one write transaction. Returns how many were migrated; 0 when there were none (no write).
    /// </summary>
    public int MigrateInlineProducers()
    {
        var pending = new List<(long Id, byte[] State)>();
        using (var tx = _env.BeginTransaction(TransactionBeginFlags.ReadOnly))
        using (var cursor = tx.CreateCursor(_state))
        {
            foreach (var (key, value) in cursor.AsEnumerable())
            {
                if (Records.IsInlineProducerState(value.AsSpan()))
                {
                    pending.Add((Records.ReadId(key.AsSpan()), value.CopyToNewArray()));
                }
            }
        }
        if (pending.Count > 0)
        {
            Write(w =>
            {
                foreach (var (id, state) in pending)
                {
                    w.PutState(id, state);
                }
            });
        }
        return pending.Count;
    }

    /// <summary>How many producer records there are (all streams).</summary>
    public int CountProducers()
    {
        using var tx = _env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        return (int)tx.GetEntriesCount(_producers);
    }

    /// <summary>The committed frame index of one stream, in position order, packed.</summary>
    public FrameIndex LoadFrames(long id)
    {
        var frames = new FrameIndex();
        var prefix = Records.IdKey(id);
        using (var tx = _env.BeginTransaction(TransactionBeginFlags.ReadOnly))
        using (var cursor = tx.CreateCursor(_frames))
        {
            var code = cursor.SetRange(Records.FrameKey(id, 0));
            while (code == MDBResultCode.Success)
            {
                var (_, key, value) = cursor.GetCurrent();
                var keySpan = key.AsSpan();
                if (keySpan.Length != 16 || !keySpan[..8].SequenceEqual(prefix))
                {
                    break;
                }
                frames.Add(Records.ReadFrame(keySpan, value.AsSpan()));
                code = cursor.Next().resultCode;
            }
        }
        CountRecordsRead(frames.Count + 1);
        return frames;
    }

    /// <summary>
    /// The append-time samples of one stream (position, time), in position order: only streams whose retention policy
    /// has a maximum age have any.
    /// </summary>
    public List<(long Position, long Ticks)> LoadTimes(long id)
    {
        var samples = new List<(long, long)>();
        var prefix = Records.IdKey(id);
        using var tx = _env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        using var cursor = tx.CreateCursor(_times);
        var code = cursor.SetRange(Records.TimeKey(id, 0));
        while (code == MDBResultCode.Success)
        {
            var (_, key, value) = cursor.GetCurrent();
            var keySpan = key.AsSpan();
            if (keySpan.Length != 16 || !keySpan[..8].SequenceEqual(prefix))
            {
                break;
            }
            samples.Add((Records.ReadId(keySpan[8..]), Records.DecodeTicks(value.AsSpan())));
            code = cursor.Next().resultCode;
        }
        return samples;
    }

    /// <summary>How many frame records and append-time samples LMDB holds for a stream (for tests).</summary>
    public (int Frames, int Times) CountRecords(long id)
    {
        using var tx = _env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        return (CountPrefixed(tx, _frames, id), CountPrefixed(tx, _times, id));
    }

    private static int CountPrefixed(LightningTransaction tx, LightningDatabase database, long id)
    {
        var prefix = Records.IdKey(id);
        using var cursor = tx.CreateCursor(database);
        var count = 0;
        var code = cursor.SetRange(Records.FrameKey(id, 0));
        while (code == MDBResultCode.Success && cursor.GetCurrent().key.AsSpan()[..8].SequenceEqual(prefix))
        {
            count++;
            code = cursor.Next().resultCode;
        }
        return count;
    }

    /// <summary>The commit log's current generation (0 for a new data directory); see <see cref="CommitLog"/>.</summary>
    public long ReadLogGeneration()
    {
        using var tx = _env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        var (code, _, value) = tx.Get(_control, s_logGenerationKey);
        return code == MDBResultCode.Success ? System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(value.AsSpan()) : 0;
    }

    /// <summary>Runs <paramref name="apply"/> in one write transaction and commits it (durably unless opened with NoSync).</summary>
    public void Write(Action<MetadataWriter> apply)
    {
        using var tx = _env.BeginTransaction();
        apply(new MetadataWriter(this, tx));
        tx.Commit().ThrowOnError();
    }

    /// <summary>Forces LMDB's pages to disk (for the relaxed durability modes).</summary>
    public void Flush() => _env.Flush(force: true).ThrowOnError();

    public void Dispose()
    {
        lock (_mapGate)
        {
            // No release after the map is gone (its address range may be reused by another mapping).
            _map = null;
        }
        _env.Dispose();
    }

    /// <summary>The operations of one write transaction.</summary>
    internal readonly struct MetadataWriter(MetadataStore store, LightningTransaction tx)
    {
        internal LightningTransaction Transaction => tx;

        public void PutName(string name, long id) => tx.Put(store._names, Records.NameKey(name), Records.IdKey(id)).ThrowOnError();

        public void DeleteName(string name) => Ignore(tx.Delete(store._names, Records.NameKey(name)));

        /// <summary>Writes a meta record and its index entries (a fork's link to its source, a stream that can expire).</summary>
        public void PutMeta(StreamMeta meta)
        {
            tx.Put(store._meta, Records.IdKey(meta.Id), Records.EncodeMeta(meta)).ThrowOnError();
            PutIndexes(meta);
        }

        /// <summary>The derived index entries of a meta record; a stream's source and expiry never change, so this is idempotent.</summary>
        internal void PutIndexes(StreamMeta meta)
        {
            if (meta.SourceId is { } sourceId)
            {
                tx.Put(store._forks, Records.FrameKey(sourceId, meta.Id), s_empty).ThrowOnError();
            }
            if (meta.TtlSeconds is not null || meta.ExpiresAt is not null)
            {
                tx.Put(store._expiring, Records.IdKey(meta.Id), Records.EncodeExpiry(meta)).ThrowOnError();
            }
        }

        /// <summary>
        /// Writes a state record. A version 1 record (replayed from an earlier build's commit log, or migrated at open)
        /// is split: its producers replace the stream's producer records and the state is stored as version 2.
        /// </summary>
        public void PutState(long id, byte[] state)
        {
            if (Records.IsInlineProducerState(state))
            {
                var decoded = new StreamState { ContentType = "", Requested = s_noConfiguration };
                var producers = Records.DecodeStateInto(state, decoded, out _)!;
                DeleteProducers(Records.IdKey(id));
                foreach (var (producerId, producer) in producers)
                {
                    PutProducer(id, producerId, producer);
                }
                state = Records.EncodeState(decoded);
            }
            tx.Put(store._state, Records.IdKey(id), state).ThrowOnError();
        }

        public void PutProducer(long id, string producerId, ProducerState producer) =>
            tx.Put(store._producers, Records.ProducerKey(id, producerId), Records.EncodeProducer(producerId, producer)).ThrowOnError();

        public void DeleteProducer(long id, string producerId) => Ignore(tx.Delete(store._producers, Records.ProducerKey(id, producerId)));

        private void DeleteProducers(byte[] idKey)
        {
            using var cursor = tx.CreateCursor(store._producers);
            var code = cursor.SetRange(idKey);
            while (code == MDBResultCode.Success)
            {
                var (_, key, _) = cursor.GetCurrent();
                if (!key.AsSpan().StartsWith(idKey))
                {
                    break;
                }
                cursor.Delete().ThrowOnError();
                code = cursor.GetCurrent().resultCode;
            }
        }

        public void PutFrame(long id, Frame frame) => tx.Put(store._frames, Records.FrameKey(id, frame.Start), Records.FrameValue(frame)).ThrowOnError();

        /// <summary>An append-time sample: the append that started at <paramref name="position"/> committed at <paramref name="ticks"/>.</summary>
        public void PutTime(long id, long position, long ticks) => tx.Put(store._times, Records.TimeKey(id, position), Records.EncodeTicks(ticks)).ThrowOnError();

        /// <summary>
        /// Deletes the stream's frame records and append-time samples below <paramref name="start"/> (its retained
        /// start: a frame boundary, so a frame starting below it also ends at or below it).
        /// </summary>
        public void DropBelow(long id, long start)
        {
            DeleteRange(store._frames, id, start);
            DeleteRange(store._times, id, start);
        }

        /// <summary>Deletes the keys (stream id, position) of <paramref name="database"/> with position below <paramref name="below"/>.</summary>
        private void DeleteRange(LightningDatabase database, long id, long below)
        {
            var prefix = Records.IdKey(id);
            using var cursor = tx.CreateCursor(database);
            var code = cursor.SetRange(Records.FrameKey(id, 0));
            while (code == MDBResultCode.Success)
            {
                var (_, key, _) = cursor.GetCurrent();
                var span = key.AsSpan();
                if (span.Length != 16 || !span[..8].SequenceEqual(prefix) || Records.ReadId(span[8..]) >= below)
                {
                    break;
                }
                cursor.Delete().ThrowOnError();
                code = cursor.GetCurrent().resultCode;
            }
        }

        public void PutAccess(long id, long ticks) => tx.Put(store._access, Records.IdKey(id), Records.EncodeTicks(ticks)).ThrowOnError();

        /// <summary>Records that the commit log has moved to <paramref name="generation"/>: older records are applied.</summary>
        public void PutLogGeneration(long generation)
        {
            var value = new byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(value, generation);
            tx.Put(store._control, s_logGenerationKey, value).ThrowOnError();
        }

        /// <summary>Removes every record of a stream: meta (with its index entries), state, access time, producers, all frames and append-time samples.</summary>
        public void DeleteStream(long id)
        {
            var key = Records.IdKey(id);
            var (code, _, value) = tx.Get(store._meta, key);
            if (code == MDBResultCode.Success && Records.DecodeMeta(value.AsSpan()).SourceId is { } sourceId)
            {
                Ignore(tx.Delete(store._forks, Records.FrameKey(sourceId, id)));
            }
            Ignore(tx.Delete(store._expiring, key));
            Ignore(tx.Delete(store._meta, key));
            Ignore(tx.Delete(store._state, key));
            Ignore(tx.Delete(store._access, key));
            DeleteProducers(key);
            DeleteRange(store._frames, id, long.MaxValue);
            DeleteRange(store._times, id, long.MaxValue);
        }

        private static void Ignore(MDBResultCode code)
        {
            if (code is not (MDBResultCode.Success or MDBResultCode.NotFound))
            {
                code.ThrowOnError();
            }
        }
    }
}
