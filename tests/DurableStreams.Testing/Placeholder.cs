namespace DurableStreams.Testing; public static class Placeholder { }
