<#
.SYNOPSIS
    A throw-away PostgreSQL primary with a synchronous standby, for failover experiments (dot-source this file):
    Start-PostgresFailoverCluster, Stop-PostgresFailoverPrimary, Invoke-PostgresFailoverPromotion,
    Stop-PostgresFailoverCluster.

.DESCRIPTION
    Follows scripts/PostgresTestCluster.ps1 (dot-sourced for Find-PostgresBin and Invoke-PostgresTool): a fresh temp
    directory, free 127.0.0.1 ports, trust authentication for user postgres, fsync off, and as root initdb/pg_ctl run
    as the 'postgres' OS user. The primary runs with synchronous_commit = on and synchronous_standby_names = 'standby'
    (set with ALTER SYSTEM before the base backup, so the standby inherits it, as any set-up that copies the primary's
    configuration does); the standby is a `pg_basebackup -R` of it, streaming with cluster_name 'standby'.
    Start-PostgresFailoverCluster returns once the standby is listed as synchronous.

    Stop-PostgresFailoverPrimary kills the primary: SIGKILL of its postmaster and children by PID (default, as in a
    machine crash) or `pg_ctl stop -m immediate` (-Immediate). Invoke-PostgresFailoverPromotion first resets the
    synchronous_standby_names the standby inherited (otherwise every commit on the promoted node waits for a standby
    that does not exist, for ever), then runs `pg_ctl promote -w`. Stop-PostgresFailoverCluster stops only the
    postmasters this script started (by their data directories; a killed primary is left alone) and deletes the
    directory.

    The xUnit twin is tests/DurableStreams.Postgres.Tests/ReplicatedPostgres.cs (PostgresFailoverTests).

.EXAMPLE
    . ./scripts/PostgresFailoverCluster.ps1
    $cluster = Start-PostgresFailoverCluster
    # serve --postgres $cluster.ConnectionString on one or more nodes, write through them, then:
    Stop-PostgresFailoverPrimary -Cluster $cluster
    Invoke-PostgresFailoverPromotion -Cluster $cluster
    Stop-PostgresFailoverCluster -Cluster $cluster
#>

. (Join-Path $PSScriptRoot 'PostgresTestCluster.ps1')

function Get-FreeLoopbackPort {
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $listener.Start()
    try { return $listener.LocalEndpoint.Port } finally { $listener.Stop() }
}

function Invoke-PostgresFailoverSql {
    # One statement through psql on 127.0.0.1:$Port; returns its unaligned, tuples-only output.
    param([Parameter(Mandatory)] $Cluster, [Parameter(Mandatory)][int]$Port, [Parameter(Mandatory)][string]$Sql)
    $psql = Join-Path $Cluster.Bin 'psql'
    $output = & $psql -h 127.0.0.1 -p $Port -U postgres -d postgres -v ON_ERROR_STOP=1 -X -A -t -c $Sql
    if ($LASTEXITCODE -ne 0) { throw "psql exited with code $LASTEXITCODE for: $Sql" }
    return ($output -join "`n").Trim()
}

function Start-PostgresFailoverCluster {
    $bin = Find-PostgresBin
    if (-not $bin) { throw 'PostgreSQL binaries (initdb, pg_ctl) were not found; install postgresql-15 or set DS_PG_BIN.' }
    $directory = [System.IO.Directory]::CreateTempSubdirectory('durable-streams-pgha-').FullName
    $asPostgres = [Environment]::UserName -eq 'root'
    if ($asPostgres) { & chown postgres $directory }
    $cluster = [pscustomobject]@{
        Bin              = $bin
        Directory        = $directory
        AsPostgres       = $asPostgres
        PrimaryData      = Join-Path $directory 'primary'
        StandbyData      = Join-Path $directory 'standby'
        PrimaryPort      = Get-FreeLoopbackPort
        StandbyPort      = Get-FreeLoopbackPort
        PrimaryKilled    = $false
        ConnectionString = $null
    }
    $cluster.ConnectionString = "Host=127.0.0.1:$($cluster.PrimaryPort),127.0.0.1:$($cluster.StandbyPort);Username=postgres;Database=postgres;Target Session Attributes=read-write"
    try {
        $common = "-k $directory -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=on -c max_connections=200"
        Invoke-PostgresTool (Join-Path $bin 'initdb') @('-D', $cluster.PrimaryData, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync') $asPostgres
        Invoke-PostgresTool (Join-Path $bin 'pg_ctl') @('start', '-w', '-t', '60', '-D', $cluster.PrimaryData, '-l', (Join-Path $directory 'primary.log'),
            '-o', "-p $($cluster.PrimaryPort) -c cluster_name=primary $common") $asPostgres
        $null = Invoke-PostgresFailoverSql $cluster $cluster.PrimaryPort "ALTER SYSTEM SET synchronous_standby_names = 'standby'"
        $null = Invoke-PostgresFailoverSql $cluster $cluster.PrimaryPort 'SELECT pg_reload_conf()'
        Invoke-PostgresTool (Join-Path $bin 'pg_basebackup') @('-h', '127.0.0.1', '-p', "$($cluster.PrimaryPort)", '-U', 'postgres',
            '-D', $cluster.StandbyData, '-R', '-X', 'stream', '-c', 'fast') $asPostgres
        Invoke-PostgresTool (Join-Path $bin 'pg_ctl') @('start', '-w', '-t', '60', '-D', $cluster.StandbyData, '-l', (Join-Path $directory 'standby.log'),
            '-o', "-p $($cluster.StandbyPort) -c cluster_name=standby $common") $asPostgres
        # The standby connects on its own; commits on the primary wait until it is listed as synchronous.
        $deadline = [DateTime]::UtcNow.AddSeconds(30)
        while ((Invoke-PostgresFailoverSql $cluster $cluster.PrimaryPort "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'") -ne 'sync') {
            if ([DateTime]::UtcNow -gt $deadline) { throw "The standby did not become synchronous within 30 s; see $directory/standby.log." }
            Start-Sleep -Milliseconds 50
        }
    }
    catch {
        Stop-PostgresFailoverCluster -Cluster $cluster
        throw
    }
    $cluster
}

function Get-PostmasterPid {
    param([Parameter(Mandatory)][string]$Data)
    $file = Join-Path $Data 'postmaster.pid'
    if (-not (Test-Path -LiteralPath $file)) { return $null }
    [int](Get-Content -LiteralPath $file -TotalCount 1)
}

function Test-ProcessRunning {
    # /proc/<pid>/stat is "pid (comm) state ..."; a zombie (Z) no longer runs or holds its sockets.
    param([int]$Id)
    try { $stat = [System.IO.File]::ReadAllText("/proc/$Id/stat") } catch { return $false }
    $state = $stat.Substring($stat.LastIndexOf(')') + 2).Split(' ')[0]
    return $state -ne 'Z' -and $state -ne 'X'
}

function Stop-PostgresFailoverPrimary {
    param([Parameter(Mandatory)] $Cluster, [switch]$Immediate)
    if ($Immediate) {
        Invoke-PostgresTool (Join-Path $Cluster.Bin 'pg_ctl') @('stop', '-m', 'immediate', '-w', '-D', $Cluster.PrimaryData) $Cluster.AsPostgres
        $Cluster.PrimaryKilled = $true
        return
    }
    $postmaster = Get-PostmasterPid $Cluster.PrimaryData
    if (-not $postmaster) { throw "No postmaster.pid in $($Cluster.PrimaryData): the primary does not run." }
    # The postmaster's children, listed before the kill: the whole server dies at once, as in a machine crash.
    $children = foreach ($dir in [System.IO.Directory]::EnumerateDirectories('/proc')) {
        $id = 0
        if (-not [int]::TryParse([System.IO.Path]::GetFileName($dir), [ref]$id)) { continue }
        try { $text = [System.IO.File]::ReadAllText("$dir/stat") } catch { continue }
        if ([int]$text.Substring($text.LastIndexOf(')') + 2).Split(' ')[1] -eq $postmaster) { $id }
    }
    $all = @($postmaster) + @($children)
    foreach ($id in $all) { & kill -KILL $id 2>$null }
    $Cluster.PrimaryKilled = $true
    $deadline = [DateTime]::UtcNow.AddSeconds(10)
    while (@($all | Where-Object { Test-ProcessRunning $_ }).Count -gt 0) {
        if ([DateTime]::UtcNow -gt $deadline) { throw "The primary (postmaster PID $postmaster) still runs 10 s after SIGKILL." }
        Start-Sleep -Milliseconds 10
    }
}

function Invoke-PostgresFailoverPromotion {
    param([Parameter(Mandatory)] $Cluster)
    # The pitfall: the standby inherited synchronous_standby_names = 'standby' from the primary. Promoted with it, the
    # node waits on every commit for a synchronous standby that does not exist. Reset it first (it has no effect on a
    # standby, so there is no window in which commits hang).
    $null = Invoke-PostgresFailoverSql $Cluster $Cluster.StandbyPort "ALTER SYSTEM SET synchronous_standby_names = ''"
    $null = Invoke-PostgresFailoverSql $Cluster $Cluster.StandbyPort 'SELECT pg_reload_conf()'
    Invoke-PostgresTool (Join-Path $Cluster.Bin 'pg_ctl') @('promote', '-w', '-t', '60', '-D', $Cluster.StandbyData) $Cluster.AsPostgres
}

function Stop-PostgresFailoverCluster {
    param([Parameter(Mandatory)] $Cluster)
    $targets = @()
    if (-not $Cluster.PrimaryKilled) { $targets += $Cluster.PrimaryData }
    $targets += $Cluster.StandbyData
    foreach ($data in $targets) {
        if (-not (Test-Path -LiteralPath (Join-Path $data 'postmaster.pid'))) { continue }
        try {
            Invoke-PostgresTool (Join-Path $Cluster.Bin 'pg_ctl') @('stop', '-m', 'fast', '-w', '-D', $data) $Cluster.AsPostgres
        }
        catch {
            Write-Warning "Could not stop the PostgreSQL in ${data}: $($_.Exception.Message)"
        }
    }
    Remove-Item -LiteralPath $Cluster.Directory -Recurse -Force -ErrorAction SilentlyContinue
}
