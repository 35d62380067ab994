#Requires -Version 7.6
# Every ```powershell example in the README's "PowerShell module" section and in module/README.md runs, as written,
# in a fresh pwsh that imported the module by path (not from $env:PSModulePath, the case where a thread job cannot
# auto-load it). Only what names an outside server is substituted: http://localhost:4437 becomes a token-protected test
# server and the token prompt its token. An example that does not finish within two minutes fails (and is killed).

BeforeDiscovery {
    $repo = Join-Path $PSScriptRoot '..' '..'
    $script:examples = [Collections.Generic.List[hashtable]]::new()
    foreach ($file in 'README.md', 'module/README.md') {
        $text = Get-Content -Raw -LiteralPath (Join-Path $repo $file)
        if ($file -eq 'README.md') {
            # Only the module's section: the rest of the README shows shell commands.
            $start = $text.IndexOf("`n## PowerShell module")
            $end = $text.IndexOf("`n## ", $start + 1)
            $text = $text.Substring($start, $end - $start)
        }
        $index = 0
        foreach ($match in [regex]::Matches($text, '(?ms)^```powershell\r?\n(.*?)^```')) {
            $index++
            $code = $match.Groups[1].Value
            # The install instructions change the user's module path and global tools; they are not an example.
            if ($code -match 'build\.ps1 install') { continue }
            $script:examples.Add(@{ File = $file; Index = $index; Code = $code; Title = ($code -split "`n" | Where-Object { $_.Trim() } | Select-Object -First 1).Trim() })
        }
    }
}

BeforeAll {
    $script:modulePath = if ($env:DURABLESTREAMS_MODULE_PATH) { $env:DURABLESTREAMS_MODULE_PATH } else { Join-Path $PSScriptRoot '..' '..' 'artifacts' 'module' 'DurableStreams' }
    $script:manifest = (Resolve-Path (Join-Path $script:modulePath 'DurableStreams.psd1')).Path
    Import-Module $script:manifest -Force

    # The server the examples that name http://localhost:4437 talk to: tokens required, as in the example.
    $script:tokenServer = Start-DurableStreamServer -Port 0 -InMemory -WriteToken (ConvertTo-SecureString 'readme-secret' -AsPlainText -Force)
    $script:substitutions = [ordered]@{
        'http://localhost:4437'                          = $script:tokenServer.ServerUri.ToString().TrimEnd('/')
        "Read-Host -AsSecureString -Prompt 'Token'" = "ConvertTo-SecureString 'readme-secret' -AsPlainText -Force"
    }
}

AfterAll {
    if ($script:tokenServer) { $script:tokenServer | Stop-DurableStreamServer }
}

Describe 'README examples' -Tag 'Integration' {
    It '<File> example <Index> (<Title>) runs in a pwsh that imported the module by path' -ForEach $examples {
        $code = $Code
        foreach ($entry in $script:substitutions.GetEnumerator()) {
            $code = $code.Replace($entry.Key, $entry.Value)
        }
        $scriptPath = Join-Path $TestDrive "example-$Index.ps1"
        Set-Content -LiteralPath $scriptPath -Value ("`$ErrorActionPreference = 'Stop'`nImport-Module '$script:manifest'`n" + $code)

        $info = [Diagnostics.ProcessStartInfo]::new((Join-Path $PSHOME ($IsWindows ? 'pwsh.exe' : 'pwsh')))
        foreach ($argument in '-NoProfile', '-NonInteractive', '-File', $scriptPath) { $info.ArgumentList.Add($argument) }
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $info.UseShellExecute = $false
        $info.Environment['NO_COLOR'] = '1'
        $info.Environment.Remove('STREAM_URL') | Out-Null
        $info.Environment.Remove('STREAM_AUTH') | Out-Null
        $process = [Diagnostics.Process]::Start($info)
        try {
            $stdout = $process.StandardOutput.ReadToEndAsync()
            $stderr = $process.StandardError.ReadToEndAsync()
            $finished = $process.WaitForExit(120000)
            if (-not $finished) { $process.Kill($true) }
            $process.WaitForExit()
            $output = "stdout:`n$($stdout.Result)`nstderr:`n$($stderr.Result)"
            $finished | Should -BeTrue -Because "the example must not hang; $output"
            $process.ExitCode | Should -Be 0 -Because $output
            $stderr.Result.Trim() | Should -BeNullOrEmpty -Because $output
        }
        finally {
            $process.Dispose()
        }
    }
}
