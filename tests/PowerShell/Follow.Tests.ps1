#Requires -Version 7.6
# Read-DurableStream -Follow across a server restart, and what it says when its retry budget runs out.

BeforeAll {
    $script:modulePath = if ($env:DURABLESTREAMS_MODULE_PATH) { $env:DURABLESTREAMS_MODULE_PATH } else { Join-Path $PSScriptRoot '..' '..' 'artifacts' 'module' 'DurableStreams' }
    Import-Module (Join-Path $script:modulePath 'DurableStreams.psd1') -Force
}

Describe 'Read-DurableStream -Follow when the server goes away' -Tag 'Integration' {
    BeforeEach {
        $script:dataPath = Join-Path ([IO.Path]::GetTempPath()) ("ds-pester-" + [guid]::NewGuid().ToString('N'))
        $script:server = Start-DurableStreamServer -Port 0 -DataPath $script:dataPath -Durability None
    }
    AfterEach {
        Get-DurableStreamServer | Stop-DurableStreamServer
        if (Test-Path -LiteralPath $script:dataPath) { Remove-Item -LiteralPath $script:dataPath -Recurse -Force }
    }

    It 'survives a restart of the server on the same port and returns every line once (<Live>)' -ForEach @(@{ Live = 'LongPoll' }, @{ Live = 'Sse' }) {
        $uri = "$($script:server.BaseUri)restart"
        $port = $script:server.BaseUri.Port
        New-DurableStream -Uri $uri -ContentType text/plain -Value "before`n" | Out-Null
        $following = [System.Threading.ManualResetEventSlim]::new($false)
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript({
                    param($modulePath, $uri, $following, $live)
                    Import-Module (Join-Path $modulePath 'DurableStreams.psd1')
                    Read-DurableStream -Uri $uri -Follow -Live $live -Timeout 60s | ForEach-Object { $following.Set(); $_ }
                }).AddArgument($script:modulePath).AddArgument($uri).AddArgument($following).AddArgument($Live)
            $async = $ps.BeginInvoke()
            $following.Wait([TimeSpan]::FromSeconds(30)) | Should -BeTrue

            $script:server | Stop-DurableStreamServer
            # The outage outlasts the old fixed budget (3 attempts, about 0.2 s); the reader keeps retrying.
            $async.AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds(1)) | Should -BeFalse
            $script:server = Start-DurableStreamServer -Port $port -DataPath $script:dataPath -Durability None
            'after' | Write-DurableStream -Uri $uri -Close

            $read = $ps.EndInvoke($async)
            $ps.Streams.Error | Should -BeNullOrEmpty
            $read | Should -Be 'before', 'after'
        }
        finally {
            $ps.Dispose()
            $following.Dispose()
        }
    }

    It 'gives up after -MaxRetries with ServerUnreachable and says the offset to resume from' {
        $uri = "$($script:server.BaseUri)budget"
        New-DurableStream -Uri $uri -ContentType text/plain -Value "kept`n" | Out-Null
        $tail = (Get-DurableStream $uri).NextOffset

        $read = Read-DurableStream -Uri $uri -Follow -MaxRetries 2 -RetryFor 30s -Timeout 60s -ErrorAction SilentlyContinue -ErrorVariable failures |
            ForEach-Object { $script:server | Stop-DurableStreamServer; $_ }

        $read | Should -Be 'kept'
        @($failures).Count | Should -Be 1
        $failures[0].FullyQualifiedErrorId | Should -BeLike 'ServerUnreachable,DurableStreams.PowerShell.*'
        $failures[0].ToString() | Should -BeLike "*Resume with -Offset $tail."
        $failures[0].ErrorDetails.RecommendedAction | Should -Be "Read-DurableStream -Offset $tail"
    }

    It 'refuses a -RetryFor of zero and a negative -MaxRetries' {
        { Read-DurableStream -Uri "$($script:server.BaseUri)x" -Follow -RetryFor 0 } | Should -Throw -ErrorId 'ParameterArgumentTransformationError,DurableStreams.PowerShell.ReadDurableStreamCommand'
        { Read-DurableStream -Uri "$($script:server.BaseUri)x" -Follow -MaxRetries -1 } | Should -Throw -ErrorId 'ParameterArgumentValidationError,DurableStreams.PowerShell.ReadDurableStreamCommand'
    }
}
