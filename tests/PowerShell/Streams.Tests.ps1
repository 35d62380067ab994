#Requires -Version 7.6
# The stream cmdlets against one in-process server per store: success paths, pipeline binding, errors, -WhatIf,
# -Follow, cancellation.

BeforeDiscovery {
    $stores = @(@{ Store = 'Memory' }, @{ Store = 'File' })
}

BeforeAll {
    $script:modulePath = if ($env:DURABLESTREAMS_MODULE_PATH) { $env:DURABLESTREAMS_MODULE_PATH } else { Join-Path $PSScriptRoot '..' '..' 'artifacts' 'module' 'DurableStreams' }
    Import-Module (Join-Path $script:modulePath 'DurableStreams.psd1') -Force

    function New-StreamUri([string]$Prefix = 's') {
        "$($script:server.BaseUri)$Prefix-$([guid]::NewGuid().ToString('N'))"
    }
    function Assert-ErrorRecord($Records, [string]$ErrorId, [string]$Category) {
        @($Records).Count | Should -BeGreaterThan 0
        $record = @($Records)[0]
        $record | Should -BeOfType ([System.Management.Automation.ErrorRecord])
        $record.FullyQualifiedErrorId | Should -BeLike "$ErrorId,DurableStreams.PowerShell.*"
        $record.CategoryInfo.Category | Should -Be $Category
        # One line for a protocol error, no .NET stack trace.
        $record.ToString() | Should -Not -Match '\s+at DurableStreams\.'
        $record.ToString() | Should -Not -Match "`n"
    }
}

Describe 'Stream cmdlets on the <Store> store' -ForEach $stores -Tag 'Integration' {
    BeforeAll {
        $script:dataPath = Join-Path ([IO.Path]::GetTempPath()) ("ds-pester-" + [guid]::NewGuid().ToString('N'))
        $script:server = if ($Store -eq 'Memory') {
            Start-DurableStreamServer -Port 0 -InMemory
        }
        else {
            Start-DurableStreamServer -Port 0 -DataPath $script:dataPath -Durability None
        }
    }
    AfterAll {
        $script:server | Stop-DurableStreamServer
        if (Test-Path -LiteralPath $script:dataPath) { Remove-Item -LiteralPath $script:dataPath -Recurse -Force }
    }

    Context 'New-DurableStream and Get-DurableStream' {
        It 'creates a stream and returns its metadata' {
            $uri = New-StreamUri

            $stream = New-DurableStream -Uri $uri -ContentType application/json

            $stream | Should -BeOfType ([DurableStreams.PowerShell.DurableStreamInfo])
            $stream.Uri.ToString() | Should -Be $uri
            $stream.Name | Should -Be ($uri -split '/')[-1]
            $stream.ContentType | Should -Be 'application/json'
            $stream.NextOffset | Should -Be '0000000000000000_0000000000000000'
            $stream.Closed | Should -BeFalse
            $stream.TimeToLive | Should -BeNullOrEmpty
            $stream.ExpiresAt | Should -BeNullOrEmpty
        }

        It 'addresses a stream by -Name with -Server, -BaseUri or the session''s only server' {
            $name = "named/$([guid]::NewGuid().ToString('N'))"

            $created = New-DurableStream -Name $name -Server $script:server -ContentType text/plain

            $created.Uri.ToString() | Should -Be "$($script:server.BaseUri)$name"
            (Get-DurableStream -Name $name -BaseUri $script:server.ServerUri).Uri | Should -Be $created.Uri
            (Get-DurableStream -Name $name -BaseUri $script:server.BaseUri).Uri | Should -Be $created.Uri
            (Get-DurableStream -Name $name).Uri | Should -Be $created.Uri
        }

        It 'sets -TimeToLive, -ExpiresAt, -Closed and initial -Value' {
            $ttl = New-DurableStream -Uri (New-StreamUri) -TimeToLive 1h
            $ttl.TimeToLive | Should -Be ([TimeSpan]::FromHours(1))

            $at = [DateTimeOffset]::new(2099, 1, 2, 3, 4, 5, [TimeSpan]::Zero)
            (New-DurableStream -Uri (New-StreamUri) -ExpiresAt $at).ExpiresAt | Should -Be $at.LocalDateTime

            $closed = New-DurableStream -Uri (New-StreamUri) -ContentType text/plain -Value "only`n" -Closed
            $closed.Closed | Should -BeTrue
            Read-DurableStream -Uri $closed.Uri | Should -Be 'only'

            $json = New-DurableStream -Uri (New-StreamUri) -ContentType application/json -Value @{ first = $true }
            (Read-DurableStream -Uri $json.Uri).first | Should -BeTrue
        }

        It 'forks a stream by name and by URI, at an offset' {
            $source = New-DurableStream -Uri (New-StreamUri 'source') -ContentType text/plain -Value "one`n"
            $middle = (Get-DurableStream -Uri $source.Uri).NextOffset
            "two" | Write-DurableStream -Uri $source.Uri

            $fullFork = New-DurableStream -Uri (New-StreamUri 'fork') -ForkFrom $source.Name
            $partFork = New-DurableStream -Uri (New-StreamUri 'fork') -ForkFrom $source.Uri.ToString() -ForkOffset $middle

            $fullFork.ContentType | Should -Be 'text/plain'
            Read-DurableStream -Uri $fullFork.Uri | Should -Be 'one', 'two'
            Read-DurableStream -Uri $partFork.Uri | Should -Be 'one'
        }

        It 'succeeds quietly when the same stream exists, and reports StreamExists for other settings' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType text/plain | Out-Null

            (New-DurableStream -Uri $uri -ContentType text/plain).Uri.ToString() | Should -Be $uri
            New-DurableStream -Uri $uri -ContentType application/json -ErrorAction SilentlyContinue -ErrorVariable failures | Should -BeNullOrEmpty

            Assert-ErrorRecord $failures 'StreamExists' 'ResourceExists'
        }

        It 'does not create a stream with -WhatIf' {
            $uri = New-StreamUri

            New-DurableStream -Uri $uri -WhatIf | Should -BeNullOrEmpty

            Get-DurableStream -Uri $uri -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }

        It 'reports a missing stream as StreamNotFound (ObjectNotFound)' {
            Get-DurableStream -Uri (New-StreamUri 'missing') -ErrorAction SilentlyContinue -ErrorVariable failures | Should -BeNullOrEmpty

            Assert-ErrorRecord $failures 'StreamNotFound' 'ObjectNotFound'
        }

        It 'reports a URI without a stream name as InvalidStreamUri (InvalidArgument)' {
            Get-DurableStream -Uri $script:server.BaseUri -ErrorAction SilentlyContinue -ErrorVariable failures
            Assert-ErrorRecord $failures 'InvalidStreamUri' 'InvalidArgument'

            Get-DurableStream -Uri 'relative/path' -ErrorAction SilentlyContinue -ErrorVariable failures
            Assert-ErrorRecord $failures 'InvalidStreamUri' 'InvalidArgument'
        }

        It 'reports a -Name that names no stream as InvalidStreamName (InvalidArgument)' {
            Get-DurableStream -Name '/' -Server $script:server -ErrorAction SilentlyContinue -ErrorVariable failures

            Assert-ErrorRecord $failures 'InvalidStreamName' 'InvalidArgument'
        }

        It 'turns a protocol error into a terminating error with -ErrorAction Stop' {
            { Get-DurableStream -Uri (New-StreamUri 'missing') -ErrorAction Stop } | Should -Throw -ErrorId 'StreamNotFound,DurableStreams.PowerShell.GetDurableStreamCommand'
        }

        It 'reports a stopped server as ServerUnreachable (ConnectionError)' {
            $gone = Start-DurableStreamServer -Port 0 -InMemory
            $gone | Stop-DurableStreamServer

            Get-DurableStream -Uri "$($gone.BaseUri)anything" -ErrorAction SilentlyContinue -ErrorVariable failures

            Assert-ErrorRecord $failures 'ServerUnreachable' 'ConnectionError'
        }
    }

    Context 'Pipeline binding' {
        It 'binds -Uri by value from strings and URIs' {
            $a = New-StreamUri
            $b = New-StreamUri

            $created = $a, ([uri]$b) | New-DurableStream -ContentType text/plain

            $created.Uri | Should -Be @([uri]$a, [uri]$b)
            ($a, $b | Get-DurableStream).Uri | Should -Be @([uri]$a, [uri]$b)
        }

        It 'binds -Uri by property name from stream objects and other objects' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType text/plain -Value "hello`n" | Out-Null

            Get-DurableStream $uri | Read-DurableStream | Should -Be 'hello'
            [pscustomobject]@{ Uri = $uri } | Get-DurableStream | ForEach-Object NextOffset | Should -Not -Be '0000000000000000_0000000000000000'
            New-DurableStream -Uri (New-StreamUri) -ContentType text/plain | Close-DurableStream -PassThru | ForEach-Object Closed | Should -BeTrue
        }

        It 'writes piped objects to a stream and reads them back as objects' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType application/json | Out-Null

            1..100 | ForEach-Object { @{ n = $_ } } | Write-DurableStream -Uri $uri

            $messages = @(Get-DurableStream $uri | Read-DurableStream)
            $messages.Count | Should -Be 100
            $messages[0] | Should -BeOfType ([pscustomobject])
            $messages.n | Should -Be (1..100)
        }
    }

    Context 'Write-DurableStream' {
        It 'serialises hashtables, PSCustomObjects, arrays and scalars as JSON messages' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType application/json | Out-Null

            @{ name = 'a'; tags = @('x', 'y'); nested = @{ ok = $true } }, [pscustomobject]@{ id = 7; price = 1.5 }, 42, '{"raw":"json"}', $null |
                Write-DurableStream -Uri $uri

            $messages = Read-DurableStream -Uri $uri
            $messages.Count | Should -Be 4
            $messages[0].name | Should -Be 'a'
            $messages[0].tags | Should -Be 'x', 'y'
            $messages[0].nested.ok | Should -BeTrue
            $messages[1].id | Should -Be 7
            $messages[1].id | Should -BeOfType ([long])
            $messages[1].price | Should -Be 1.5
            $messages[2] | Should -Be 42
            $messages[3].raw | Should -Be 'json'
        }

        It 'writes strings as lines to text streams, or without line feeds with -NoNewline' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType 'text/plain; charset=utf-8' | Out-Null

            'first', 'second' | Write-DurableStream -Uri $uri
            'a', 'b' | Write-DurableStream -Uri $uri -NoNewline

            Read-DurableStream -Uri $uri | Should -Be 'first', 'second', 'ab'
            Read-DurableStream -Uri $uri -Raw | Should -Be "first`nsecond`nab"
        }

        It 'writes byte arrays as they are' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType application/octet-stream | Out-Null
            $bytes = [byte[]](0, 1, 2, 255, 10, 13)

            Write-DurableStream -Uri $uri -InputObject $bytes

            (Read-DurableStream -Uri $uri -AsByteStream | Measure-Object).Count | Should -Be 1
            $read = Read-DurableStream -Uri $uri -AsByteStream
            $read -is [byte[]] | Should -BeTrue
            [Convert]::ToBase64String($read) | Should -Be ([Convert]::ToBase64String($bytes))
        }

        It 'returns the tail offset with -PassThru, and -Offset resumes a read from it' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType application/json | Out-Null

            $offset = 1..3 | ForEach-Object { @{ n = $_ } } | Write-DurableStream -Uri $uri -PassThru
            4..5 | ForEach-Object { @{ n = $_ } } | Write-DurableStream -Uri $uri

            $offset | Should -BeOfType ([string])
            (Read-DurableStream -Uri $uri -Offset $offset).n | Should -Be 4, 5
            Read-DurableStream -Uri $uri -Offset now | Should -BeNullOrEmpty
        }

        It 'appends many messages exactly once and in order' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType application/json | Out-Null

            1..3000 | ForEach-Object { @{ i = $_; pad = 'x' * 100 } } | Write-DurableStream -Uri $uri

            $read = Read-DurableStream -Uri $uri
            $read.Count | Should -Be 3000
            ($read.i -join ',') | Should -Be ((1..3000) -join ',')
        }

        It 'closes the stream with -Close, also without input' {
            $withInput = New-StreamUri
            New-DurableStream -Uri $withInput -ContentType text/plain | Out-Null
            'last' | Write-DurableStream -Uri $withInput -Close
            (Get-DurableStream $withInput).Closed | Should -BeTrue
            Read-DurableStream $withInput | Should -Be 'last'

            $withoutInput = New-StreamUri
            New-DurableStream -Uri $withoutInput | Out-Null
            Write-DurableStream -Uri $withoutInput -Close
            (Get-DurableStream $withoutInput).Closed | Should -BeTrue
        }

        It 'reports an append to a closed stream as StreamClosed (InvalidOperation)' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType text/plain -Closed | Out-Null

            'late' | Write-DurableStream -Uri $uri -ErrorAction SilentlyContinue -ErrorVariable failures

            Assert-ErrorRecord $failures 'StreamClosed' 'InvalidOperation'
        }

        It 'reports JSON the server refuses as BadRequest (InvalidArgument)' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType application/json | Out-Null

            'not json' | Write-DurableStream -Uri $uri -ErrorAction SilentlyContinue -ErrorVariable failures

            Assert-ErrorRecord $failures 'BadRequest' 'InvalidArgument'
            Read-DurableStream -Uri $uri | Should -BeNullOrEmpty
        }

        It 'skips empty messages with EmptyMessage (InvalidArgument) and leaves the stream open' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType application/json | Out-Null

            '' | Write-DurableStream -Uri $uri -ErrorAction SilentlyContinue -ErrorVariable failures

            Assert-ErrorRecord $failures 'EmptyMessage' 'InvalidArgument'
            (Get-DurableStream $uri).Closed | Should -BeFalse
        }

        It 'reports a missing stream as StreamNotFound and writes nothing' {
            'x' | Write-DurableStream -Uri (New-StreamUri 'missing') -ErrorAction SilentlyContinue -ErrorVariable failures

            Assert-ErrorRecord $failures 'StreamNotFound' 'ObjectNotFound'
        }

        It 'appends nothing with -WhatIf' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType text/plain | Out-Null

            'x', 'y' | Write-DurableStream -Uri $uri -Close -WhatIf

            (Get-DurableStream $uri).Closed | Should -BeFalse
            Read-DurableStream -Uri $uri | Should -BeNullOrEmpty
        }
    }

    Context 'Read-DurableStream' {
        It 'stops after -MaxMessages' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType application/json | Out-Null
            1..10 | ForEach-Object { @{ n = $_ } } | Write-DurableStream -Uri $uri

            (Read-DurableStream -Uri $uri -MaxMessages 3).n | Should -Be 1, 2, 3
        }

        It 'returns a JSON stream as one JSON array with -Raw' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType application/json | Out-Null
            @{ n = 1 }, @{ n = 2 } | Write-DurableStream -Uri $uri

            $raw = Read-DurableStream -Uri $uri -Raw

            $raw | Should -BeOfType ([string])
            ($raw | ConvertFrom-Json).n | Should -Be 1, 2
        }

        It 'reports an invalid offset as BadRequest (InvalidArgument)' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri | Out-Null

            Read-DurableStream -Uri $uri -Offset 'not-an-offset' -ErrorAction SilentlyContinue -ErrorVariable failures

            Assert-ErrorRecord $failures 'BadRequest' 'InvalidArgument'
        }

        It 'refuses -Live without -Follow' {
            $uri = New-StreamUri
            { Read-DurableStream -Uri $uri -Live Sse } | Should -Throw -ErrorId 'LiveWithoutFollow,DurableStreams.PowerShell.ReadDurableStreamCommand'
            { Read-DurableStream -Uri $uri -Follow -Live Polling } | Should -Throw -ErrorId 'CannotConvertArgumentNoMessage,DurableStreams.PowerShell.ReadDurableStreamCommand'
        }

        It '-Follow -Live <Live> returns live messages and ends when the stream is closed' -ForEach @(@{ Live = 'LongPoll' }, @{ Live = 'Sse' }) {
            $uri = New-StreamUri 'follow'
            New-DurableStream -Uri $uri -ContentType application/json | Out-Null
            @{ n = 1 } | Write-DurableStream -Uri $uri
            $job = $null

            # When the reader has message 1 it is following; only then a thread job appends message 2 and closes.
            $read = Read-DurableStream -Uri $uri -Follow -Live $Live -Timeout 30s | ForEach-Object {
                if ($_.n -eq 1) {
                    $job = Start-ThreadJob -ArgumentList $script:modulePath, $uri -ScriptBlock {
                        param($modulePath, $uri)
                        Import-Module (Join-Path $modulePath 'DurableStreams.psd1')
                        @{ n = 2 } | Write-DurableStream -Uri $uri -Close
                    }
                }
                $_
            }

            $job | Wait-Job | Receive-Job -ErrorAction Stop
            $job | Remove-Job
            $read.n | Should -Be 1, 2
            (Get-DurableStream $uri).Closed | Should -BeTrue
        }

        It '-Follow ends at once on a stream that is already closed' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType text/plain -Value "done`n" -Closed | Out-Null

            Read-DurableStream -Uri $uri -Follow -Timeout 30s | Should -Be 'done'
        }

        It '-Timeout cancels a waiting -Follow with ReadTimeout (OperationTimeout), after returning what it read' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType text/plain -Value "before`n" | Out-Null
            $watch = [Diagnostics.Stopwatch]::StartNew()

            $read = Read-DurableStream -Uri $uri -Follow -Timeout 300ms -ErrorAction SilentlyContinue -ErrorVariable failures

            $watch.Stop()
            $read | Should -Be 'before'
            Assert-ErrorRecord $failures 'ReadTimeout' 'OperationTimeout'
            # The server's long-poll timeout is 30 s: the wait was cancelled, not answered.
            $watch.Elapsed.TotalSeconds | Should -BeLessThan 10
        }

        It 'stops a waiting -Follow at once when the pipeline is stopped (Ctrl+C)' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri -ContentType text/plain -Value "first`n" | Out-Null
            $following = [System.Threading.ManualResetEventSlim]::new($false)
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript({
                        param($modulePath, $uri, $following)
                        Import-Module (Join-Path $modulePath 'DurableStreams.psd1')
                        Read-DurableStream -Uri $uri -Follow | ForEach-Object { $following.Set(); $_ }
                    }).AddArgument($script:modulePath).AddArgument($uri).AddArgument($following)
                $async = $ps.BeginInvoke()
                $following.Wait([TimeSpan]::FromSeconds(30)) | Should -BeTrue

                $watch = [Diagnostics.Stopwatch]::StartNew()
                $ps.Stop()
                $watch.Stop()

                $watch.Elapsed.TotalSeconds | Should -BeLessThan 10
                $async.IsCompleted | Should -BeTrue
                $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            }
            finally {
                $ps.Dispose()
                $following.Dispose()
            }
        }
    }

    Context 'Close-DurableStream and Remove-DurableStream' {
        It 'closes a stream, idempotently' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri | Out-Null

            Close-DurableStream -Uri $uri | Should -BeNullOrEmpty
            Close-DurableStream -Uri $uri

            (Get-DurableStream $uri).Closed | Should -BeTrue
        }

        It 'does not close with -WhatIf' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri | Out-Null

            Close-DurableStream -Uri $uri -WhatIf

            (Get-DurableStream $uri).Closed | Should -BeFalse
        }

        It 'reports closing a missing stream as StreamNotFound' {
            Close-DurableStream -Uri (New-StreamUri 'missing') -ErrorAction SilentlyContinue -ErrorVariable failures

            Assert-ErrorRecord $failures 'StreamNotFound' 'ObjectNotFound'
        }

        It 'keeps the stream with -WhatIf' {
            $uri = New-StreamUri
            New-DurableStream -Uri $uri | Out-Null

            Remove-DurableStream -Uri $uri -WhatIf

            (Get-DurableStream $uri).Uri.ToString() | Should -Be $uri
        }

        It 'deletes piped streams with -Confirm:$false' {
            $streams = 1..3 | ForEach-Object { New-DurableStream -Uri (New-StreamUri) }

            $streams | Remove-DurableStream -Confirm:$false

            $streams | Get-DurableStream -ErrorAction SilentlyContinue -ErrorVariable failures | Should -BeNullOrEmpty
            $failures.Count | Should -Be 3
            Assert-ErrorRecord $failures 'StreamNotFound' 'ObjectNotFound'
        }

        It 'declares ConfirmImpact High' {
            $attribute = (Get-Command Remove-DurableStream).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false)[0]
            $attribute.ConfirmImpact | Should -Be 'High'
        }

        It 'reports deleting a missing stream as StreamNotFound' {
            Remove-DurableStream -Uri (New-StreamUri 'missing') -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable failures

            Assert-ErrorRecord $failures 'StreamNotFound' 'ObjectNotFound'
        }
    }
}
