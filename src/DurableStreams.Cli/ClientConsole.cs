namespace DurableStreams.Cli;

/// <summary>
/// The process resources the client commands use besides the invocation's text writers: raw standard input and
/// output (for bytes that must not pass through a <see cref="TextWriter"/>) and environment variables. Tests pass their own.
/// </summary>
internal sealed record ClientConsole
{
    /// <summary>The real process: <see cref="Console.OpenStandardInput()"/>, <see cref="Console.OpenStandardOutput()"/> and the environment.</summary>
    public static ClientConsole System { get; } = new();

    /// <summary>Opens raw standard input; called at most once per invocation, and only by commands that read it.</summary>
    public Func<Stream> OpenStandardInput { get; init; } = Console.OpenStandardInput;

    /// <summary>Opens raw standard output; called at most once per invocation, and only by commands that write bytes.</summary>
    public Func<Stream> OpenStandardOutput { get; init; } = Console.OpenStandardOutput;

    /// <summary>
    /// Whether standard error is a terminal (not redirected), which is when progress bars are drawn; tests decide.
    /// </summary>
    public Func<bool> IsErrorTerminal { get; init; } = static () => !Console.IsErrorRedirected;

    /// <summary>Whether standard input is a terminal (not redirected); <c>append</c> then says it is reading it.</summary>
    public Func<bool> IsInputTerminal { get; init; } = static () => !Console.IsInputRedirected;

    /// <summary>Whether standard output is a terminal (not redirected); <c>ls</c> then prints a table instead of bare names.</summary>
    public Func<bool> IsOutputTerminal { get; init; } = static () => !Console.IsOutputRedirected;

    /// <summary>The clock progress bars throttle by; tests pass a fake one.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Reads an environment variable; null when it is not set.</summary>
    public Func<string, string?> GetEnvironmentVariable { get; init; } = Environment.GetEnvironmentVariable;
}
