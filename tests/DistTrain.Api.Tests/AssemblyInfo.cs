// The tests start real nodes (Akka, Kestrel) and `disttrain` processes; one at a time keeps a 2-core CI machine calm.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
