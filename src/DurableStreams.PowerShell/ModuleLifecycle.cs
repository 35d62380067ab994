using System.Management.Automation;
using DurableStreams.PowerShell.Internal;

namespace DurableStreams.PowerShell;

/// <summary>
/// Runs when the module is imported and removed. On import it lets the ASP.NET Core shared framework load inside pwsh
/// (which starts with the base runtime only) and makes sure servers stop when pwsh exits; on removal it stops every
/// server this session started.
/// </summary>
public sealed class ModuleLifecycle : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    private static int s_processExitHooked;

    /// <inheritdoc/>
    public void OnImport()
    {
        AspNetCoreAssemblyResolver.Register();
        if (Interlocked.Exchange(ref s_processExitHooked, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += static (_, _) => ServerRegistry.StopAll();
        }
    }

    /// <inheritdoc/>
    public void OnRemove(PSModuleInfo psModuleInfo) => ServerRegistry.StopAll();
}
