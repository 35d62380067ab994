using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace DurableStreams.Bench;

/// <summary>
/// Receives for many raw reader connections on one thread (scenario 17): one-shot epoll says which socket is readable,
/// recv(2) reads it, and the waiting reader's continuation runs right there. A delivery then costs the client a recv, an
/// epoll re-arm and its own parsing — no hop through the socket engine's thread and the thread pool, which is most of
/// what a <see cref="Socket.ReceiveAsync(Memory{byte}, SocketFlags, CancellationToken)"/> reader spends. On two cores
/// the client's CPU per delivery competes with the server's, so a leaner client measures the server more closely.
/// Every socket also asks the kernel for receive timestamps (SO_TIMESTAMPNS): <see cref="LastArrivalNs"/> says when the
/// bytes of the last receive reached the socket, before any reader processing. Linux only.
/// </summary>
internal sealed partial class EpollReceiver : IDisposable
{
    private const uint EpollIn = 0x001;
    private const uint EpollOneShot = 1u << 30;
    private const int CtlAdd = 1;
    private const int CtlDel = 2;
    private const int CtlMod = 3;
    private const int Eagain = 11;
    private const int Eintr = 4;
    private const int SolSocket = 1;
    private const int SoTimestampNs = 35; // SO_TIMESTAMPNS (old, 64-bit timespec on x86-64); SCM_TIMESTAMPNS has the same number
    private const int MsgDontWait = 0x40;

    private readonly int _epoll;
    private readonly Thread _thread;
    private readonly ConcurrentDictionary<int, Receive> _receives = new();

    private volatile bool _stopping;

    public EpollReceiver()
    {
        _epoll = EpollCreate1(0);
        if (_epoll < 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), "epoll_create1 failed");
        }

        _thread = new Thread(Run) { IsBackground = true, Name = "bench epoll readers" };
        _thread.Start();
    }

    public static bool IsSupported => OperatingSystem.IsLinux();

    /// <summary>Receives into <paramref name="buffer"/> once <paramref name="socket"/> is readable; 0 when the peer closed.</summary>
    public ValueTask<int> ReceiveAsync(Socket socket, Memory<byte> buffer)
    {
        var fd = (int)socket.Handle;
        var added = false;
        var receive = _receives.GetOrAdd(fd, _ =>
        {
            added = true;
            return new Receive(fd);
        });
        if (added)
        {
            var on = 1;
            if (SetSockOpt(fd, SolSocket, SoTimestampNs, ref on, sizeof(int)) != 0)
            {
                throw new Win32Exception(Marshal.GetLastPInvokeError(), "setsockopt(SO_TIMESTAMPNS) failed");
            }
        }

        receive.Prepare(buffer);
        var control = new EpollEvent { Events = EpollIn | EpollOneShot, Data = (ulong)fd };
        if (EpollCtl(_epoll, added ? CtlAdd : CtlMod, fd, ref control) != 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), "epoll_ctl failed");
        }

        return new ValueTask<int>(receive, receive.Version);
    }

    /// <summary>
    /// The CLOCK_REALTIME nanoseconds at which the bytes of <paramref name="socket"/>'s last receive reached it (the
    /// kernel's stamp of the last segment in that receive), or 0 when the kernel gave none. Kernel stamps are on the
    /// wall clock only; <see cref="ArrivalClock"/> turns one into the reader's Stopwatch time.
    /// </summary>
    public long LastArrivalNs(Socket socket) =>
        _receives.TryGetValue((int)socket.Handle, out var receive) ? receive.ArrivalNs : 0;

    /// <summary>Stops watching <paramref name="socket"/>; call before closing it, as its descriptor number will be reused.</summary>
    public void Forget(Socket socket)
    {
        var fd = (int)socket.Handle;
        if (_receives.TryRemove(fd, out _))
        {
            var control = default(EpollEvent);
            _ = EpollCtl(_epoll, CtlDel, fd, ref control);
        }
    }

    /// <summary>Stops the loop, which closes the epoll descriptor; waits for it unless called from a continuation it runs.</summary>
    public void Dispose()
    {
        _stopping = true;
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }
    }

    private unsafe void Run()
    {
        var events = new EpollEvent[256];
        while (!_stopping)
        {
            int count;
            fixed (EpollEvent* first = events)
            {
                count = EpollWait(_epoll, first, events.Length, 100);
            }

            if (count < 0 && Marshal.GetLastPInvokeError() != Eintr)
            {
                throw new Win32Exception(Marshal.GetLastPInvokeError(), "epoll_wait failed");
            }

            for (var i = 0; i < count; i++)
            {
                if (!_receives.TryGetValue((int)events[i].Data, out var receive))
                {
                    continue;
                }

                var received = receive.TryReceive(out var error);
                if (received >= 0)
                {
                    receive.Complete(received, null);
                }
                else if (error == Eagain)
                {
                    // Spurious: wait for the next readiness.
                    var control = new EpollEvent { Events = EpollIn | EpollOneShot, Data = (ulong)receive.Fd };
                    _ = EpollCtl(_epoll, CtlMod, receive.Fd, ref control);
                }
                else
                {
                    receive.Complete(0, new SocketException(error));
                }
            }
        }

        _ = Close(_epoll);
    }

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static partial int EpollCtl(int epoll, int operation, int fd, ref EpollEvent control);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    private static unsafe partial int EpollWait(int epoll, EpollEvent* events, int maxEvents, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    private static unsafe partial nint RecvMsg(int fd, MsgHdr* message, int flags);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    private static partial int SetSockOpt(int fd, int level, int name, ref int value, int length);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    // struct epoll_event is packed on x86-64: a 32-bit mask followed directly by the 64-bit data.
    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    private struct EpollEvent
    {
        public uint Events;
        public ulong Data;
    }

    // struct msghdr, iovec and cmsghdr on x86-64 Linux.
    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CmsgHdr
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    /// <summary>One connection's pending receive; completed on the epoll thread, its continuation run inline.</summary>
    private sealed class Receive(int fd) : IValueTaskSource<int>
    {
        private ManualResetValueTaskSourceCore<int> _core = new() { RunContinuationsAsynchronously = false };
        private Memory<byte> _buffer;

        public int Fd { get; } = fd;

        public short Version => _core.Version;

        public void Prepare(Memory<byte> buffer)
        {
            _core.Reset();
            _buffer = buffer;
        }

        /// <summary>CLOCK_REALTIME nanoseconds at which the last receive's final segment reached the socket; 0 if none.</summary>
        public long ArrivalNs { get; private set; }

        public unsafe int TryReceive(out int error)
        {
            using var pin = _buffer.Pin();
            var iov = new IoVec { Base = pin.Pointer, Length = (nuint)_buffer.Length };
            // Room for one cmsghdr (16 B) and a timespec (16 B), 8-byte aligned.
            var control = stackalloc long[8];
            var message = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = 8 * sizeof(long) };
            var received = RecvMsg(Fd, &message, MsgDontWait);
            error = received < 0 ? Marshal.GetLastPInvokeError() : 0;
            if (received > 0)
            {
                ArrivalNs = 0;
                var header = (CmsgHdr*)control;
                if (message.ControlLength >= (nuint)sizeof(CmsgHdr) + 16 && header->Level == SolSocket && header->Type == SoTimestampNs)
                {
                    var stamp = (long*)((byte*)control + sizeof(CmsgHdr));
                    ArrivalNs = (stamp[0] * 1_000_000_000) + stamp[1];
                }
            }

            return (int)received;
        }

        public void Complete(int received, Exception? error)
        {
            _buffer = default;
            if (error is null)
            {
                _core.SetResult(received);
            }
            else
            {
                _core.SetException(error);
            }
        }

        public int GetResult(short token) => _core.GetResult(token);

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}

/// <summary>
/// The reader's arrival and its socket's kernel receive stamp on one clock. The kernel stamps receives on CLOCK_REALTIME,
/// the readers' clock is a <see cref="Stopwatch"/> (CLOCK_MONOTONIC): a stamp is placed on the reader's clock by its
/// age on the wall clock, both clocks read together at the reader's arrival. Mapping through one pair read once at
/// start (as before) let any step of the wall clock since then, or a pause (GC, preemption) between the reader's
/// reads of its clock and of the stamp's conversion, put a stamp after the arrival it precedes.
/// </summary>
internal static class ArrivalClock
{
    /// <summary>
    /// The reader's clock (ms) and CLOCK_REALTIME (ns since the Unix epoch) read together: the wall clock between two
    /// readings of <paramref name="clock"/> at most 50 µs apart (a few attempts), their midpoint as the arrival.
    /// </summary>
    public static (double ElapsedMs, long RealtimeNs) Now(Stopwatch clock)
    {
        var window = Stopwatch.Frequency / 20_000;
        for (var attempt = 0; ; attempt++)
        {
            var before = clock.ElapsedTicks;
            var realtime = RealtimeNs();
            var after = clock.ElapsedTicks;
            if (after - before <= window || attempt == 9)
            {
                return ((before + after) / 2 * 1000.0 / Stopwatch.Frequency, realtime);
            }
        }
    }

    /// <summary>CLOCK_REALTIME now, in nanoseconds since the Unix epoch (100 ns resolution).</summary>
    public static long RealtimeNs() => (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;

    /// <summary>
    /// Where a kernel stamp (<paramref name="stampNs"/>, CLOCK_REALTIME) falls on the reader's clock, given the pair
    /// read at the reader's arrival; never later than <paramref name="arrivedMs"/> unless the stamp is later than
    /// <paramref name="realtimeNs"/> on the wall clock itself.
    /// </summary>
    public static double SocketMs(long stampNs, double arrivedMs, long realtimeNs) => arrivedMs - ((realtimeNs - stampNs) / 1e6);
}
