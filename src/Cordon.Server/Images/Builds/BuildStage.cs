namespace Cordon.Server.Images.Builds;

/// <summary>A stage of a Dockerfile: its <c>FROM</c> and the instructions up to the next one.</summary>
/// <param name="Index">0 for the first stage.</param>
/// <param name="Name">Its <c>AS name</c> (lower case), or null.</param>
/// <param name="Base">What <c>FROM</c> names, unprocessed (it may use the global ARGs).</param>
public sealed record BuildStage(int Index, string? Name, string Base, Instruction From, IReadOnlyList<Instruction> Instructions);
