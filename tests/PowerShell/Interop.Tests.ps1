#Requires -Version 7.6
# Cross-implementation tier: Read-DurableStream and Write-DurableStream against the Node reference server
# (@durable-streams/server, pinned in tests/DurableStreams.Interop.Tests/reference) and against ours. The run installs
# the reference itself (npm ci into artifacts/interop/reference when the lock file changed) and starts it with
# start-reference.mjs on 127.0.0.1 port 0; only that process (by PID) is stopped. Without node/npm the tests skip,
# except under CI=true, where they fail. Tagged Interop: build.ps1 runs them in the cross-implementation line.

BeforeDiscovery {
    $servers = @(@{ Server = 'reference'; Label = 'the Node reference server' }, @{ Server = 'ours'; Label = 'our server' })
}

BeforeAll {
    $script:modulePath = if ($env:DURABLESTREAMS_MODULE_PATH) { $env:DURABLESTREAMS_MODULE_PATH } else { Join-Path $PSScriptRoot '..' '..' 'artifacts' 'module' 'DurableStreams' }
    Import-Module (Join-Path $script:modulePath 'DurableStreams.psd1') -Force
    $script:repoRoot = [IO.Path]::GetFullPath((Join-Path $PSScriptRoot '..' '..'))

    function Start-ReferenceServer {
        # Returns the reference's process and streams root, or a reason why it cannot run.
        $source = Join-Path $script:repoRoot 'tests' 'DurableStreams.Interop.Tests' 'reference'
        $target = Join-Path $script:repoRoot 'artifacts' 'interop' 'reference'
        if (-not (Get-Command node -CommandType Application -ErrorAction SilentlyContinue) -or
            -not (Get-Command npm -CommandType Application -ErrorAction SilentlyContinue)) {
            return [pscustomobject]@{ Reason = 'node and npm are needed for the Node reference server.' }
        }
        New-Item -ItemType Directory -Force -Path $target | Out-Null
        foreach ($file in 'package.json', 'package-lock.json', 'start-reference.mjs') {
            Copy-Item -LiteralPath (Join-Path $source $file) -Destination (Join-Path $target $file) -Force
        }
        $lockHash = (Get-FileHash -Algorithm SHA256 -LiteralPath (Join-Path $target 'package-lock.json')).Hash
        $stamp = Join-Path $target 'node_modules' '.package-lock.sha256'
        $entry = Join-Path $target 'node_modules' '@durable-streams' 'server' 'package.json'
        if (-not ((Test-Path -LiteralPath $entry) -and (Test-Path -LiteralPath $stamp) -and (Get-Content -Raw -LiteralPath $stamp).Trim() -eq $lockHash)) {
            Push-Location $target
            try {
                $output = & npm ci --no-audit --no-fund 2>&1
                if ($LASTEXITCODE -ne 0) { return [pscustomobject]@{ Reason = "npm ci failed ($LASTEXITCODE): $output" } }
            }
            finally { Pop-Location }
            Set-Content -LiteralPath $stamp -Value $lockHash -NoNewline
        }
        $info = [Diagnostics.ProcessStartInfo]::new('node')
        $info.WorkingDirectory = $target
        $info.ArgumentList.Add('start-reference.mjs')
        $info.ArgumentList.Add('--long-poll-ms')
        $info.ArgumentList.Add('2000')
        $info.RedirectStandardInput = $true
        $info.RedirectStandardOutput = $true
        $info.UseShellExecute = $false
        $process = [Diagnostics.Process]::Start($info)
        $line = $process.StandardOutput.ReadLineAsync()
        if (-not $line.Wait([TimeSpan]::FromSeconds(60)) -or -not $line.Result) {
            $process.Kill()
            return [pscustomobject]@{ Reason = 'The Node reference server printed no URL.' }
        }
        [pscustomobject]@{ Process = $process; Root = ([Uri]$line.Result.Trim()).GetLeftPart('Authority') + '/'; Reason = $null }
    }
}

Describe 'Read-DurableStream and Write-DurableStream against <Label>' -ForEach $servers -Tag 'Interop', 'Integration' {
    BeforeAll {
        $script:reference = $null
        $script:ours = $null
        if ($Server -eq 'reference') {
            $script:reference = Start-ReferenceServer
            if ($script:reference.Reason -and $env:CI -eq 'true') {
                throw "CI=true needs the Node reference server: $($script:reference.Reason)"
            }
            $script:root = $script:reference.Root
            # -BaseUri with -StreamsPath / addresses streams served at the server's root.
            $script:byBase = @{ BaseUri = $script:reference.Root; StreamsPath = '/' }
        }
        else {
            $script:ours = Start-DurableStreamServer -Port 0 -InMemory
            $script:root = $script:ours.BaseUri.ToString()
            $script:byBase = @{ BaseUri = ([Uri]$script:root).GetLeftPart('Authority') }
        }
        function New-StreamUri([string]$Prefix = 's') { "$($script:root)$Prefix-$([guid]::NewGuid().ToString('N'))" }
    }
    AfterAll {
        if ($script:reference.Process) {
            $script:reference.Process.StandardInput.Close() # start-reference.mjs stops when stdin ends
            if (-not $script:reference.Process.WaitForExit(10000)) { $script:reference.Process.Kill() }
            $script:reference.Process.Dispose()
        }
        if ($script:ours) { $script:ours | Stop-DurableStreamServer }
    }
    BeforeEach {
        if ($script:reference.Reason) { Set-ItResult -Skipped -Because $script:reference.Reason }
    }

    It 'writes text lines by -Uri and reads them back by -Uri, by -Name as a full URI and by -Name with -BaseUri' {
        $uri = New-StreamUri
        New-DurableStream -Uri $uri -ContentType text/plain | Out-Null

        'first', 'second' | Write-DurableStream -Uri $uri
        'third' | Write-DurableStream -Name $uri

        Read-DurableStream -Uri $uri | Should -Be 'first', 'second', 'third'
        Read-DurableStream -Name $uri | Should -Be 'first', 'second', 'third'
        Read-DurableStream -Name ($uri -split '/')[-1] @script:byBase | Should -Be 'first', 'second', 'third'
    }

    It 'follows with -Live <Live> and returns every message written before the stream closed' -ForEach @(@{ Live = 'LongPoll' }, @{ Live = 'Sse' }) {
        $uri = New-StreamUri 'json'
        New-DurableStream -Uri $uri -ContentType application/json | Out-Null
        1..3 | ForEach-Object { @{ n = $_ } } | Write-DurableStream -Uri $uri
        @{ n = 4 } | Write-DurableStream -Uri $uri
        @{ n = 5 } | Write-DurableStream -Uri $uri -Close

        $read = Read-DurableStream -Uri $uri -Follow -Live $Live -Timeout 30s

        $read.n | Should -Be 1, 2, 3, 4, 5
    }

    It 'follows a text stream over SSE whole, each append a separate event on the reference' {
        $uri = New-StreamUri
        New-DurableStream -Uri $uri -ContentType text/plain | Out-Null
        foreach ($word in 'x', 'y', 'z') { $word | Write-DurableStream -Uri $uri -NoNewline }
        Write-DurableStream -Uri $uri -Close

        Read-DurableStream -Uri $uri -Follow -Live Sse -Raw -Timeout 30s | Should -Be 'xyz'
    }

    It 'writes and follows bytes (base64 over SSE)' {
        $uri = New-StreamUri 'bin'
        New-DurableStream -Uri $uri -ContentType application/octet-stream | Out-Null
        Write-DurableStream -Uri $uri -InputObject ([byte[]](0, 1, 2))
        Write-DurableStream -Uri $uri -InputObject ([byte[]](255, 10, 13)) -Close

        $read = @(Read-DurableStream -Uri $uri -Follow -Live Sse -AsByteStream -Timeout 30s)

        [Convert]::ToBase64String([byte[]]($read | ForEach-Object { $_ })) | Should -Be ([Convert]::ToBase64String([byte[]](0, 1, 2, 255, 10, 13)))
    }
}
