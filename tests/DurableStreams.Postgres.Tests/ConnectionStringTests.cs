using DurableStreams.Storage.Postgres;
using Npgsql;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>The store's defaults for what a connection string leaves unset, and that set values win.</summary>
public sealed class ConnectionStringTests
{
    [Fact]
    public void Unset_timeouts_and_statement_preparation_get_the_store_defaults()
    {
        var built = new NpgsqlConnectionStringBuilder(PostgresStreamStore.ConnectionStringFor("Host=127.0.0.1;Username=postgres"));

        Assert.Equal(5, built.Timeout);
        Assert.Equal(15, built.CommandTimeout);
        Assert.Equal(64, built.MaxAutoPrepare);
        Assert.Equal(2, built.AutoPrepareMinUsages);
        Assert.True(built.NoResetOnClose);
        Assert.Equal("127.0.0.1", built.Host);
    }

    [Fact]
    public void Values_the_user_set_are_kept_even_when_they_turn_a_default_off()
    {
        var built = new NpgsqlConnectionStringBuilder(PostgresStreamStore.ConnectionStringFor(
            "Host=db;Timeout=30;Command Timeout=60;Max Auto Prepare=0;Auto Prepare Min Usages=5;No Reset On Close=false"));

        Assert.Equal(30, built.Timeout);
        Assert.Equal(60, built.CommandTimeout);
        Assert.Equal(0, built.MaxAutoPrepare);
        Assert.Equal(5, built.AutoPrepareMinUsages);
        Assert.False(built.NoResetOnClose);
    }

    [Fact]
    public void Several_hosts_default_to_the_read_write_primary_and_one_host_gets_no_target()
    {
        var several = new NpgsqlConnectionStringBuilder(PostgresStreamStore.ConnectionStringFor("Host=db1:5432,db2:5433;Username=postgres"));
        var one = new NpgsqlConnectionStringBuilder(PostgresStreamStore.ConnectionStringFor("Host=db1;Username=postgres"));

        Assert.Equal("read-write", several.TargetSessionAttributes);
        Assert.Null(one.TargetSessionAttributes);
    }

    [Fact]
    public void A_target_session_the_user_set_is_kept()
    {
        var built = new NpgsqlConnectionStringBuilder(PostgresStreamStore.ConnectionStringFor("Host=db1,db2;Target Session Attributes=primary"));

        Assert.Equal("primary", built.TargetSessionAttributes);
    }
}
