#Requires -Version 7.6
# What a PowerShell user reaches for: -Force, Stop-DurableStreamServer without arguments, -AsByteStream as one byte[],
# -Producer/-Epoch and -MaxBytes as on the tool, NotText for hashtables on text streams, -ContentType completion.

BeforeAll {
    $script:modulePath = if ($env:DURABLESTREAMS_MODULE_PATH) { $env:DURABLESTREAMS_MODULE_PATH } else { Join-Path $PSScriptRoot '..' '..' 'artifacts' 'module' 'DurableStreams' }
    Import-Module (Join-Path $script:modulePath 'DurableStreams.psd1') -Force
    function New-StreamName { "ux-$([guid]::NewGuid().ToString('N'))" }
}

Describe 'Stop-DurableStreamServer without arguments' -Tag 'Integration' {
    It 'stops every server this session started' {
        $first = Start-DurableStreamServer -Port 0 -InMemory
        $second = Start-DurableStreamServer -Port 0 -InMemory
        Stop-DurableStreamServer
        $first.IsRunning | Should -BeFalse
        $second.IsRunning | Should -BeFalse
        Get-DurableStreamServer | Should -BeNullOrEmpty
    }

    It 'stops nothing when an empty pipeline is piped in' {
        $server = Start-DurableStreamServer -Port 0 -InMemory
        @() | Stop-DurableStreamServer
        $server.IsRunning | Should -BeTrue
        Stop-DurableStreamServer
        $server.IsRunning | Should -BeFalse
    }
}

Describe 'Stream cmdlets a PowerShell user reaches for' -Tag 'Integration' {
    BeforeAll { $script:server = Start-DurableStreamServer -Port 0 -InMemory }
    AfterAll { Stop-DurableStreamServer }

    It 'removes and closes with -Force even when confirmation would be asked' {
        $name = New-StreamName
        New-DurableStream $name -ContentType text/plain | Out-Null
        $ConfirmPreference = 'Low'   # every ShouldProcess would prompt; -Force must not
        Close-DurableStream $name -Force
        (Get-DurableStream $name).Closed | Should -BeTrue
        Remove-DurableStream $name -Force -WhatIf
        Get-DurableStream $name | Should -Not -BeNullOrEmpty
        Remove-DurableStream $name -Force
        Get-DurableStream $name -ErrorAction SilentlyContinue -ErrorVariable failure | Should -BeNullOrEmpty
        $failure[0].FullyQualifiedErrorId | Should -BeLike 'StreamNotFound,*'
    }

    It 'removes with -Force in a pwsh started with -NonInteractive' {
        $name = New-StreamName
        New-DurableStream $name -ContentType text/plain | Out-Null
        $manifest = Join-Path $script:modulePath 'DurableStreams.psd1'
        $pwsh = Join-Path $PSHOME ($IsWindows ? 'pwsh.exe' : 'pwsh')
        & $pwsh -NoProfile -NonInteractive -Command "`$ErrorActionPreference = 'Stop'; Import-Module '$manifest'; Remove-DurableStream '$name' -BaseUri '$($script:server.BaseUri)' -Force"
        $LASTEXITCODE | Should -Be 0
        Get-DurableStream $name -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'returns one byte array with -AsByteStream, and one per response with -Raw' {
        $name = New-StreamName
        New-DurableStream $name -ContentType application/octet-stream | Out-Null
        Write-DurableStream $name ([byte[]](1, 2, 3))
        Write-DurableStream $name ([byte[]](4, 5))
        $all = @(Read-DurableStream $name -AsByteStream)
        $all.Count | Should -Be 1
        $all[0] -is [byte[]] | Should -BeTrue
        [byte[]]$all[0] | Should -Be @(1, 2, 3, 4, 5)
        $chunks = @(Read-DurableStream $name -AsByteStream -Raw)
        $chunks | ForEach-Object { $_ -is [byte[]] | Should -BeTrue }
        [byte[]]($chunks | ForEach-Object { $_ }) | Should -Be @(1, 2, 3, 4, 5)
        [byte[]](Read-DurableStream $name -AsByteStream -MaxBytes 4) | Should -Be @(1, 2, 3, 4)
    }

    It 'stops JSON reads at -MaxBytes before the message that would go past it, and text reads at the byte' {
        $json = New-StreamName
        New-DurableStream $json -ContentType application/json | Out-Null
        @{ n = 1 }, @{ n = 2 }, @{ n = 3 } | Write-DurableStream $json
        (Read-DurableStream $json -MaxBytes 15).n | Should -Be @(1, 2)
        $text = New-StreamName
        New-DurableStream $text -ContentType text/plain | Out-Null
        'abc', 'def' | Write-DurableStream $text
        Read-DurableStream $text -MaxBytes 6 | Should -Be @('abc', 'de')
    }

    It 'appends through a named producer and epoch; a replay with the same epoch appends nothing' {
        $name = New-StreamName
        New-DurableStream $name -ContentType text/plain | Out-Null
        'a', 'b' | Write-DurableStream $name -Producer pester -Epoch 3
        'a', 'b' | Write-DurableStream $name -Producer pester -Epoch 3
        Read-DurableStream $name | Should -Be @('a', 'b')
        'c' | Write-DurableStream $name -Producer pester -Epoch 4
        Read-DurableStream $name | Should -Be @('a', 'b', 'c')
        { 'x' | Write-DurableStream $name -Epoch 1 } | Should -Throw -ErrorId 'EpochWithoutProducer,DurableStreams.PowerShell.WriteDurableStreamCommand'
    }

    It 'refuses a hashtable on a text stream with NotText instead of sending its type name' {
        $name = New-StreamName
        New-DurableStream $name -ContentType text/plain | Out-Null
        @{ a = 1 }, 'fine', [pscustomobject]@{ b = 2 } | Write-DurableStream $name -ErrorAction SilentlyContinue -ErrorVariable failures
        @($failures).Count | Should -Be 2
        $failures | ForEach-Object { $_.FullyQualifiedErrorId | Should -BeLike 'NotText,*'; $_.CategoryInfo.Category | Should -Be 'InvalidArgument' }
        Read-DurableStream $name | Should -Be 'fine'
        New-DurableStream (New-StreamName) -ContentType text/plain -Value @{ a = 1 } -ErrorAction SilentlyContinue -ErrorVariable created | Should -BeNullOrEmpty
        $created[0].FullyQualifiedErrorId | Should -BeLike 'NotText,*'
        # Numbers, dates and the like still have a text form.
        42 | Write-DurableStream $name
        (Read-DurableStream $name)[-1] | Should -Be '42'
    }

    It 'Wait-DurableStream returns once data arrives past the offset' {
        $name = New-StreamName
        $before = New-DurableStream $name -ContentType text/plain
        $manifest = Join-Path $script:modulePath 'DurableStreams.psd1'
        $job = Start-ThreadJob -ArgumentList $manifest, $before.Uri, $before.NextOffset {
            param($manifest, $uri, $offset)
            Import-Module $manifest
            Wait-DurableStream -Uri $uri -Offset $offset -Timeout 60s
        }
        'arrived' | Write-DurableStream $name
        $after = $job | Receive-Job -Wait -AutoRemoveJob
        $after.NextOffset | Should -Not -Be $before.NextOffset
        $after.Closed | Should -BeFalse
    }

    It 'Wait-DurableStream returns at once for a closed stream and binds NextOffset from the pipeline' {
        $name = New-StreamName
        New-DurableStream $name -ContentType text/plain -Value "x`n" | Out-Null
        $seen = Get-DurableStream $name
        Close-DurableStream $name
        ($seen | Wait-DurableStream -Timeout 30s).Closed | Should -BeTrue
        (Wait-DurableStream $name -Timeout 30s).Closed | Should -BeTrue
    }

    It 'Wait-DurableStream reports WaitTimeout in seconds' {
        $name = New-StreamName
        New-DurableStream $name -ContentType text/plain | Out-Null
        Wait-DurableStream $name -Timeout 300ms -ErrorAction SilentlyContinue -ErrorVariable failure | Should -BeNullOrEmpty
        $failure[0].FullyQualifiedErrorId | Should -BeLike 'WaitTimeout,*'
        $failure[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
        $failure[0].ToString() | Should -Match 'within 0\.3 s\.$'
    }

    It '-Verbose shows each request and its status, as the tool''s -v' {
        $name = New-StreamName
        $created = New-DurableStream $name -ContentType text/plain -Verbose 4>&1
        $lines = @($created | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] } | ForEach-Object Message)
        $lines | Should -Contain "> PUT $($script:server.BaseUri)$name"
        @($lines | Where-Object { $_ -like "< 201 Created for PUT $($script:server.BaseUri)$name in * ms" }).Count | Should -Be 1
        $missing = Get-DurableStream "$name-missing" -Verbose -ErrorAction SilentlyContinue 4>&1
        @($missing | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -like '< 404 Not Found for HEAD *' }).Count | Should -Be 1
        # Quiet without -Verbose.
        @(Get-DurableStream $name 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Count | Should -Be 0
    }

    It 'shows no progress bars in a session nobody watches' {
        $quick = Start-DurableStreamServer -Port 0 -InMemory -LongPollTimeout 100ms
        $stream = New-DurableStream -Uri "$($quick.BaseUri)quiet" -ContentType text/plain
        $manifest = Join-Path $script:modulePath 'DurableStreams.psd1'
        # A hosted runspace has no console UI: a long follow (many long-polls of 100 ms) reports no progress there.
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$manifest'; Read-DurableStream -Uri '$($stream.Uri)' -Follow -Timeout 1500ms -ErrorAction SilentlyContinue")
            $null = $ps.Invoke()
            $ps.Streams.Error | Where-Object { $_.FullyQualifiedErrorId -notlike 'ReadTimeout,*' } | Should -BeNullOrEmpty
            $ps.Streams.Progress.Count | Should -Be 0
        }
        finally {
            $ps.Dispose()
            $quick | Stop-DurableStreamServer
        }
    }

    It 'completes -ContentType with content types, not file names' -ForEach @(
        @{ Line = 'New-DurableStream x -ContentType application/j' }, @{ Line = 'Write-DurableStream x -ContentType application/j' }) {
        $completions = (TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches.CompletionText
        $completions | Should -Contain 'application/json'
        $all = (TabExpansion2 -inputScript 'New-DurableStream x -ContentType ' -cursorColumn 'New-DurableStream x -ContentType '.Length).CompletionMatches.CompletionText
        $all | Should -Contain 'text/plain'
        $all | Where-Object { Test-Path -LiteralPath $_ } | Should -BeNullOrEmpty
    }
}
