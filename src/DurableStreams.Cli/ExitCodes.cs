namespace DurableStreams.Cli;

/// <summary>The exit codes of the client commands (documented in the README's "durable-streams commands" section).</summary>
internal static class ExitCodes
{
    /// <summary>The command succeeded.</summary>
    public const int Success = 0;

    /// <summary>Any other failure: a bad request, a rejected credential, an unreadable file, a server error.</summary>
    public const int Error = 1;

    /// <summary>The command line does not parse or fails validation.</summary>
    public const int Usage = CommandLineRunner.UsageErrorExitCode;

    /// <summary>The stream does not exist (404) or is gone (410).</summary>
    public const int NotFound = 3;

    /// <summary>A conflict (409): the stream is closed, exists with another configuration, or a sequence check failed.</summary>
    public const int Conflict = 4;

    /// <summary>The server could not be reached (no HTTP response at all).</summary>
    public const int Unreachable = 5;
}
