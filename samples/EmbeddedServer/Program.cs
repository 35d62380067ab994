// Hosts a Durable Streams server inside an ASP.NET Core app (AddDurableStreams + MapDurableStreams) on a free port,
// with the durable file store in a temporary folder, then uses the client to create a stream, append to it and read
// it back. Prints what it read and exits 0.
using System.Text;
using DurableStreams.Client;
using DurableStreams.Core;
using DurableStreams.Server;
using DurableStreams.Storage.Files;

var dataDirectory = Path.Combine(Path.GetTempPath(), "durable-streams-sample-" + Guid.NewGuid().ToString("N"));
try
{
    var builder = WebApplication.CreateSlimBuilder(args);
    builder.WebHost.UseUrls("http://127.0.0.1:0");
    builder.Logging.SetMinimumLevel(LogLevel.Warning);

    // The durable file store; without this line AddDurableStreams keeps streams in memory.
    builder.Services.AddSingleton<IStreamStore>(_ => FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = dataDirectory }));
    builder.Services.AddDurableStreams();

    await using (var app = builder.Build())
    {
        app.MapDurableStreams(); // PUT/POST/GET/HEAD/DELETE on /v1/stream/{name}
        await app.StartAsync();

        using var client = new DurableStreamClient(new DurableStreamClientOptions
        {
            BaseUrl = new Uri(app.Urls.First() + "/v1/stream/"),
        });
        var created = await client.CreateAsync("greetings", new CreateStreamOptions { ContentType = "text/plain" });
        await client.AppendAsync("greetings", "hello, ", "text/plain");
        var appended = await client.AppendAsync("greetings", "world", "text/plain");

        var text = new StringBuilder();
        await foreach (var chunk in client.ReadAsync("greetings"))
        {
            text.Append(Encoding.UTF8.GetString(chunk.Data.Span));
        }
        Console.WriteLine($"stream {created.Name}: {created.Outcome}, next offset {appended.NextOffset}");
        Console.WriteLine($"read: {text}");

        await app.StopAsync();
    }
}
finally
{
    if (Directory.Exists(dataDirectory))
    {
        Directory.Delete(dataDirectory, recursive: true);
    }
}
