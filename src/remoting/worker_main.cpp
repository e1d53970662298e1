// tensor-fusion-worker: the standalone worker executable (the CLI's `tensor-fusion worker`
// subcommand calls the same runWorker()).
#include "remoting/worker/worker.h"

int main(int argc, char** argv) { return tf::remoting::runWorker(argc, argv); }
