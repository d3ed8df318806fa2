using Cordon.Testing;
using Xunit;

[assembly: AssemblyFixture(typeof(ServerAssemblyFixture))]
