namespace DurableStreams.Server; internal static class Placeholder { }
