#Requires -Version 7.6
# State-Protocol compaction (issue 18) in the module: Compress-DurableStream (the server's admin-scoped compact route),
# Get-DurableStream's Generation, -RetentionPolicy's Compaction keys and -AdminToken.

BeforeAll {
    $script:modulePath = if ($env:DURABLESTREAMS_MODULE_PATH) { $env:DURABLESTREAMS_MODULE_PATH } else { Join-Path $PSScriptRoot '..' '..' 'artifacts' 'module' 'DurableStreams' }
    Import-Module (Join-Path $script:modulePath 'DurableStreams.psd1') -Force

    # Five versions of one key and one of another: the snapshot keeps the last of each.
    function New-StateStream([string]$Uri, [securestring]$Token) {
        $parameters = @{ Uri = $Uri; ContentType = 'application/json' }
        if ($Token) { $parameters.Token = $Token }
        New-DurableStream @parameters | Out-Null
        $changes = foreach ($n in 1..5) { @{ type = 'user'; key = 'a'; value = @{ n = $n; pad = 'x' * 40 }; headers = @{ operation = 'upsert' } } }
        $changes += @{ type = 'user'; key = 'b'; value = @{ n = 0 }; headers = @{ operation = 'insert' } }
        $write = @{ Uri = $Uri }
        if ($Token) { $write.Token = $Token }
        $changes | Write-DurableStream @write
    }
}

AfterAll {
    Get-DurableStreamServer | Stop-DurableStreamServer
}

Describe 'Compress-DurableStream' -Tag 'Integration' {
    BeforeAll {
        $script:server = Start-DurableStreamServer -Port 0 -InMemory -RetentionInterval 1h `
            -RetentionPolicy @{ Streams = 'state/**'; Compaction = 'state'; CompactionMinBytes = 4096; CompactionRatio = 3 }
    }

    It 'compacts a State-Protocol stream: the report, the generation, and what a reader from -1 gets' {
        $uri = "$($script:server.BaseUri)state/users"
        New-StateStream $uri

        $report = Compress-DurableStream -Uri $uri

        $report.Outcome | Should -Be 'compacted'
        $report.Compacted | Should -BeTrue
        $report.LiveKeys | Should -Be 2
        $report.BytesAfter | Should -BeLessThan $report.BytesBefore
        $report.OffsetGeneration | Should -Be 1
        $report.RetainedStart | Should -BeLike '0000000000000001_*'
        (Get-DurableStream -Uri $uri).Generation | Should -Be 1
        $messages = @(Read-DurableStream -Uri $uri)
        $messages.Count | Should -Be 4
        $messages[0].headers.control | Should -Be 'snapshot-start'
        $messages[1].value.n | Should -Be 5
        $messages[2].key | Should -Be 'b'
        $messages[3].headers.control | Should -Be 'snapshot-end'
    }

    It 'answers notDue when nothing was appended since, and -WhatIf compacts nothing' {
        $uri = "$($script:server.BaseUri)state/whatif"
        New-StateStream $uri

        Compress-DurableStream -Uri $uri -WhatIf | Should -BeNullOrEmpty
        (Get-DurableStream -Uri $uri).Generation | Should -Be 0
        (Compress-DurableStream -Uri $uri).Outcome | Should -Be 'compacted'
        (Compress-DurableStream -Uri $uri).Outcome | Should -Be 'notDue'
    }

    It 'writes an ErrorRecord for a stream that is not JSON' {
        $uri = "$($script:server.BaseUri)bytes"
        New-DurableStream -Uri $uri -ContentType text/plain -Value 'abc' | Out-Null

        Compress-DurableStream -Uri $uri -ErrorAction SilentlyContinue -ErrorVariable failures | Should -BeNullOrEmpty

        $failures[0].FullyQualifiedErrorId | Should -BeLike 'StreamConflict,*'
    }

    It 'passes the Compaction keys of -RetentionPolicy to the server' {
        $hostProperty = [DurableStreams.PowerShell.DurableStreamServerInfo].GetProperty('Host', [System.Reflection.BindingFlags]'Instance,NonPublic')
        $policy = $hostProperty.GetValue($script:server).Options.Retention.Resolve('state/x')
        $policy.Compaction.MinBytes | Should -Be 4096
        $policy.Compaction.MinRatio | Should -Be 3
        $hostProperty.GetValue($script:server).Options.Retention.Resolve('other').Compaction | Should -BeNullOrEmpty
    }

    It 'refuses an unknown compaction kind, and compaction with MaxAge or MaxBytes in one rule' {
        { Start-DurableStreamServer -Port 0 -InMemory -RetentionPolicy @{ Streams = 'a/**'; Compaction = 'log' } } |
            Should -Throw -ErrorId 'InvalidRetentionPolicy,DurableStreams.PowerShell.StartDurableStreamServerCommand'
        { Start-DurableStreamServer -Port 0 -InMemory -RetentionPolicy @{ Streams = 'a/**'; Compaction = 'state'; MaxBytes = 1GB } } |
            Should -Throw '*Compaction cannot be combined with MaxAge or MaxBytes*'
    }
}

Describe 'Compress-DurableStream against a server with tokens' -Tag 'Integration' {
    It 'needs an admin token: a write token gets Forbidden, -AdminToken may compact, read and write' {
        $server = Start-DurableStreamServer -Port 0 -InMemory -WriteToken (ConvertTo-SecureString 'writer' -AsPlainText -Force) `
            -AdminToken (ConvertTo-SecureString 'admin' -AsPlainText -Force)
        $uri = "$($server.BaseUri)state/guarded"
        $admin = ConvertTo-SecureString 'admin' -AsPlainText -Force
        New-StateStream $uri $admin

        Compress-DurableStream -Uri $uri -Token (ConvertTo-SecureString 'writer' -AsPlainText -Force) -ErrorAction SilentlyContinue -ErrorVariable failures |
            Should -BeNullOrEmpty
        $failures[0].FullyQualifiedErrorId | Should -BeLike 'Forbidden,*'

        (Compress-DurableStream -Uri $uri -Token $admin).Outcome | Should -Be 'compacted'
    }
}
