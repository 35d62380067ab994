namespace DurableStreams; internal static class Placeholder { }
