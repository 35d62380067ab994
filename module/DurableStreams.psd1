@{
    # build.ps1 stamps ModuleVersion with <Version> from Directory.Build.props when it lays the module out.
    RootModule           = 'DurableStreams.PowerShell.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '50af865d-6c9d-4938-869a-4d42546f20d0'
    Author               = 'DurableStreams for .NET contributors'
    CompanyName          = 'DurableStreams for .NET contributors'
    Copyright            = '(c) DurableStreams for .NET contributors'
    Description          = 'Durable Streams in PowerShell: host the Durable Streams HTTP server in process, create streams, pipe objects in and read them back as objects, and tail streams live.'
    PowerShellVersion    = '7.6'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('DurableStreams.Format.ps1xml')
    CmdletsToExport      = @(
        'Start-DurableStreamServer'
        'Stop-DurableStreamServer'
        'Get-DurableStreamServer'
        'New-DurableStream'
        'Get-DurableStream'
        'Write-DurableStream'
        'Read-DurableStream'
        'Close-DurableStream'
        'Compress-DurableStream'
        'Remove-DurableStream'
        'Show-DurableStream'
        'Wait-DurableStream'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags = @('DurableStreams', 'Streaming', 'HTTP', 'Kestrel', 'Linux')
        }
    }
}
