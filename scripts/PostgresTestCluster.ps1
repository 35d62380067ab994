<#
.SYNOPSIS
    Helpers for a throw-away PostgreSQL cluster (dot-source this file): Find-PostgresBin, Start-PostgresTestCluster,
    Stop-PostgresTestCluster.

.DESCRIPTION
    Used by Invoke-Conformance.ps1 -Store postgres and build.ps1. The cluster is initdb'd into a fresh temp directory,
    listens on a free 127.0.0.1 port with trust authentication (user postgres) and fsync off, and is stopped and
    deleted afterwards. As root, initdb and pg_ctl run as the 'postgres' OS user (runuser). DS_PG_BIN names the
    binaries' directory explicitly (and only it is tried); otherwise the newest /usr/lib/postgresql/*/bin, then PATH, is used. The
    xUnit fixture (tests/DurableStreams.Postgres.Tests/PostgresServer.cs) does the same in C#.
#>

function Find-PostgresBin {
    $candidates = [System.Collections.Generic.List[string]]::new()
    if ($env:DS_PG_BIN) {
        # An explicit directory is the only one tried (DS_PG_BIN=none behaves as if PostgreSQL were absent).
        if ((Test-Path -LiteralPath (Join-Path $env:DS_PG_BIN 'initdb')) -and (Test-Path -LiteralPath (Join-Path $env:DS_PG_BIN 'pg_ctl'))) {
            return $env:DS_PG_BIN
        }
        return $null
    }
    if (Test-Path -LiteralPath '/usr/lib/postgresql') {
        foreach ($dir in Get-ChildItem -LiteralPath '/usr/lib/postgresql' -Directory | Sort-Object Name -Descending) {
            $candidates.Add((Join-Path $dir.FullName 'bin'))
        }
    }
    foreach ($dir in ($env:PATH -split [System.IO.Path]::PathSeparator)) { if ($dir) { $candidates.Add($dir) } }
    foreach ($dir in $candidates) {
        if ((Test-Path -LiteralPath (Join-Path $dir 'initdb')) -and (Test-Path -LiteralPath (Join-Path $dir 'pg_ctl'))) {
            return $dir
        }
    }
    return $null
}

function Invoke-PostgresTool {
    param([string]$Tool, [string[]]$Arguments, [bool]$AsPostgres)
    if ($AsPostgres) {
        & runuser -u postgres -- $Tool @Arguments | Out-Host
    }
    else {
        & $Tool @Arguments | Out-Host
    }
    if ($LASTEXITCODE -ne 0) { throw "$(Split-Path -Leaf $Tool) exited with code $LASTEXITCODE." }
}

function Start-PostgresTestCluster {
    $bin = Find-PostgresBin
    if (-not $bin) { throw 'PostgreSQL binaries (initdb, pg_ctl) were not found; install postgresql-15 or set DS_PG_BIN.' }
    $directory = [System.IO.Directory]::CreateTempSubdirectory('durable-streams-pg-').FullName
    $asPostgres = [Environment]::UserName -eq 'root'
    if ($asPostgres) { & chown postgres $directory }
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $listener.Start()
    $port = $listener.LocalEndpoint.Port
    $listener.Stop()
    $data = Join-Path $directory 'data'
    Invoke-PostgresTool (Join-Path $bin 'initdb') @('-D', $data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync') $asPostgres
    $settings = "-p $port -k $directory -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200"
    Invoke-PostgresTool (Join-Path $bin 'pg_ctl') @('start', '-w', '-t', '60', '-D', $data, '-l', (Join-Path $directory 'server.log'), '-o', $settings) $asPostgres
    [pscustomobject]@{
        Bin              = $bin
        Directory        = $directory
        Data             = $data
        AsPostgres       = $asPostgres
        Port             = $port
        ConnectionString = "Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres"
    }
}

function Stop-PostgresTestCluster {
    param([Parameter(Mandatory)] $Cluster)
    try {
        Invoke-PostgresTool (Join-Path $Cluster.Bin 'pg_ctl') @('stop', '-m', 'fast', '-w', '-D', $Cluster.Data) $Cluster.AsPostgres
    }
    catch {
        Write-Warning "Could not stop the test PostgreSQL in $($Cluster.Directory): $($_.Exception.Message)"
    }
    Remove-Item -LiteralPath $Cluster.Directory -Recurse -Force -ErrorAction SilentlyContinue
}
