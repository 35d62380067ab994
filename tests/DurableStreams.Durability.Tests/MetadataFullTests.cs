using System.Text;
using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// The metadata (LMDB) runs out of room before the data does: a deliberately small map here, a full disk under the
/// metadata in production (where LMDB reports ENOSPC as a LightningException, not an IOException). Either way the
/// store is out of storage: appends are refused with <see cref="AppendStatus.InsufficientStorage"/> (507), nothing
/// partial is kept, and reads keep working. Appends reach LMDB through checkpoints of the commit log, so the test
/// checkpoints after every append; what the log already acknowledged stays readable even when LMDB cannot take it yet.
/// </summary>
public sealed class MetadataFullTests : FileStoreTestBase
{
    protected override long MetadataMapSize => 1 << 20;

    [Fact]
    public async Task Filling_the_metadata_answers_InsufficientStorage_and_keeps_what_was_acknowledged()
    {
        await CreatedAsync("s", Json);
        // Every JSON message is a frame with its own index entry, so each append adds 500 entries.
        var body = "[" + string.Join(',', Enumerable.Range(0, 500)) + "]";
        var acknowledged = 0;
        AppendStreamResult result = default;
        for (var i = 0; i < 1000; i++)
        {
            result = await AppendAsync("s", body, Json);
            if (result.Status != AppendStatus.Appended)
            {
                break;
            }
            acknowledged++;
            // A checkpoint that finds LMDB full fails; the store then refuses new appends until one succeeds.
            await Store.CheckpointAsync().ContinueWith(static _ => { }, TestContext.Current.CancellationToken);
        }

        Assert.True(acknowledged > 0);
        var expected = new StringBuilder("[");
        expected.AppendJoin(',', Enumerable.Repeat(string.Join(',', Enumerable.Range(0, 500)), acknowledged)).Append(']');
        Assert.Equal(expected.ToString(), await ReadJsonAsync("s"));
        Assert.Equal(AppendStatus.InsufficientStorage, result.Status);
    }
}
