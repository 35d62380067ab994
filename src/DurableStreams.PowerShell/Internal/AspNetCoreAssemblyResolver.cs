using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace DurableStreams.PowerShell.Internal;

/// <summary>
/// pwsh's runtimeconfig names only Microsoft.NETCore.App, so the ASP.NET Core assemblies Kestrel needs are not on its
/// probing list. This resolver loads them from the installed Microsoft.AspNetCore.App shared framework that matches the
/// running runtime (same major.minor, preferring the same patch). It only answers for files that exist there, so
/// every other failed load is left to the next handler.
/// </summary>
internal static class AspNetCoreAssemblyResolver
{
    private static readonly Lock s_gate = new();
    private static bool s_registered;
    private static string? s_directory;

    /// <summary>The shared framework folder in use, or null when none was found.</summary>
    public static string? Directory
    {
        get
        {
            lock (s_gate)
            {
                return s_directory;
            }
        }
    }

    /// <summary>Registers the handler once per process (a binary module is never unloaded, and may be imported again).</summary>
    public static void Register()
    {
        lock (s_gate)
        {
            if (s_registered)
            {
                return;
            }
            s_directory = FindSharedFramework();
            s_registered = true;
        }
        AssemblyLoadContext.Default.Resolving += Resolve;
    }

    private static Assembly? Resolve(AssemblyLoadContext context, AssemblyName name)
    {
        var directory = Directory;
        if (directory is null || string.IsNullOrEmpty(name.Name))
        {
            return null;
        }
        var path = Path.Combine(directory, name.Name + ".dll");
        return File.Exists(path) ? context.LoadFromAssemblyPath(path) : null;
    }

    private static string? FindSharedFramework()
    {
        var runtime = Environment.Version;
        foreach (var root in CandidateRoots())
        {
            var frameworks = Path.Combine(root, "shared", "Microsoft.AspNetCore.App");
            if (!System.IO.Directory.Exists(frameworks))
            {
                continue;
            }
            var best = System.IO.Directory.EnumerateDirectories(frameworks)
                .Select(path => (Path: path, Version: Version.TryParse(Path.GetFileName(path).Split('-')[0], out var v) ? v : null))
                .Where(c => c.Version is not null && c.Version.Major == runtime.Major && c.Version.Minor == runtime.Minor)
                .OrderByDescending(c => c.Version!.Build == runtime.Build)
                .ThenByDescending(c => c.Version)
                .Select(c => c.Path)
                .FirstOrDefault();
            if (best is not null)
            {
                return best;
            }
        }
        return null;
    }

    private static IEnumerable<string> CandidateRoots()
    {
        // <root>/shared/Microsoft.NETCore.App/<version>/ → <root>
        var runtimeDirectory = RuntimeEnvironment.GetRuntimeDirectory().TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
        var fromRuntime = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(runtimeDirectory)));
        if (fromRuntime is not null)
        {
            yield return fromRuntime;
        }
        if (Environment.GetEnvironmentVariable("DOTNET_ROOT") is { Length: > 0 } dotnetRoot)
        {
            yield return dotnetRoot;
        }
        yield return OperatingSystem.IsWindows()
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ProgramFiles), "dotnet")
            : "/usr/lib/dotnet";
        if (!OperatingSystem.IsWindows())
        {
            yield return "/usr/share/dotnet";
        }
    }
}
