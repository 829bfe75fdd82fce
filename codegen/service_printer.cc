#include "codegen/service_printer.h"

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "codegen/comments.h"
#include "codegen/names.h"
#include "google/protobuf/io/printer.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace nprpc {
namespace codegen {
namespace {

using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;
using Vars = std::map<std::string, std::string>;

// Runs `print` against a fresh printer and returns what it printed.
template <typename Fn>
std::string Print(Fn print) {
  std::string text;
  {
    google::protobuf::io::StringOutputStream stream(&text);
    google::protobuf::io::Printer printer(&stream, '$');
    print(printer);
  }
  return text;
}

Vars ServiceVars(const ServiceDescriptor* service) {
  return {
      {"Service", ServiceClassName(service)},
      {"full_name", service->full_name()},
      {"Mock", MockStubName(service)},
  };
}

// How a method streams; indexes the per-kind tables below.
enum Kind { kUnary = 0, kClientStreaming = 1, kServerStreaming = 2, kBidi = 3 };

Kind KindOf(const MethodDescriptor* method) {
  if (method->client_streaming() && method->server_streaming()) return kBidi;
  if (method->client_streaming()) return kClientStreaming;
  if (method->server_streaming()) return kServerStreaming;
  return kUnary;
}

const char* const kStreamKindNames[] = {
    "::nprpc::StreamKind::kUnary",
    "::nprpc::StreamKind::kClientStreaming",
    "::nprpc::StreamKind::kServerStreaming",
    "::nprpc::StreamKind::kBidiStreaming",
};

bool HasStreaming(const ServiceDescriptor* service) {
  for (int i = 0; i < service->method_count(); ++i) {
    if (KindOf(service->method(i)) != kUnary) return true;
  }
  return false;
}

Vars MethodVars(const MethodDescriptor* method) {
  Vars vars = ServiceVars(method->service());
  vars["Method"] = MethodName(method);
  vars["MethodAsync"] = AsyncMethodName(method);
  vars["method"] = method->name();  // on the wire
  vars["Request"] = QualifiedMessageName(method->input_type());
  vars["Response"] = QualifiedMessageName(method->output_type());
  vars["kind"] = kStreamKindNames[KindOf(method)];
  return vars;
}

// Comment lines of `method` at `indent`, printed as they are.
void PrintMethodComment(google::protobuf::io::Printer& p, const MethodDescriptor* method,
                        const char* indent) {
  std::string comment = LeadingComment(method, indent);
  if (!comment.empty()) p.PrintRaw(comment);
}

}  // namespace

// ------------------------------------------------------------ Header sections

namespace {

// The three client forms of one method, per kind; $virtual$ and $suffix$
// make the interface's pure declarations or the stub's overrides.
const char* const kStubMethodDeclarations[] = {
    // kUnary
    "    $virtual$::absl::StatusOr<$Response$> $Method$(\n"
    "        const $Request$& request,\n"
    "        const ::nprpc::CallOptions& options = ::nprpc::CallOptions())$suffix$;\n"
    "    $virtual$void $Method$(const $Request$& request,\n"
    "        ::nprpc::Callback<$Response$> done,\n"
    "        const ::nprpc::CallOptions& options)$suffix$;\n"
    "    $virtual$::nprpc::Task<::absl::StatusOr<$Response$>> $MethodAsync$(\n"
    "        const $Request$& request,\n"
    "        ::nprpc::CallOptions options = ::nprpc::CallOptions())$suffix$;\n",
    // kClientStreaming
    "    $virtual$::std::unique_ptr<::nprpc::ClientWriter<$Request$>> $Method$(\n"
    "        $Response$* response,\n"
    "        const ::nprpc::CallOptions& options = ::nprpc::CallOptions())$suffix$;\n"
    "    $virtual$void $Method$($Response$* response,\n"
    "        ::nprpc::ClientWriteReactor<$Request$>* reactor,\n"
    "        const ::nprpc::CallOptions& options)$suffix$;\n"
    "    $virtual$::nprpc::Task<::nprpc::ClientStreamWriter<$Request$, $Response$>>\n"
    "    $MethodAsync$(::nprpc::CallOptions options = ::nprpc::CallOptions())$suffix$;\n",
    // kServerStreaming
    "    $virtual$::std::unique_ptr<::nprpc::ClientReader<$Response$>> $Method$(\n"
    "        const $Request$& request,\n"
    "        const ::nprpc::CallOptions& options = ::nprpc::CallOptions())$suffix$;\n"
    "    $virtual$void $Method$(const $Request$& request,\n"
    "        ::nprpc::ClientReadReactor<$Response$>* reactor,\n"
    "        const ::nprpc::CallOptions& options)$suffix$;\n"
    "    $virtual$::nprpc::Task<::nprpc::ClientStreamReader<$Response$>> $MethodAsync$(\n"
    "        const $Request$& request,\n"
    "        ::nprpc::CallOptions options = ::nprpc::CallOptions())$suffix$;\n",
    // kBidi
    "    $virtual$::std::unique_ptr<::nprpc::ClientReaderWriter<$Request$, $Response$>>\n"
    "    $Method$(const ::nprpc::CallOptions& options = ::nprpc::CallOptions())$suffix$;\n"
    "    $virtual$void $Method$(::nprpc::ClientBidiReactor<$Request$, $Response$>* reactor,\n"
    "        const ::nprpc::CallOptions& options)$suffix$;\n"
    "    $virtual$::nprpc::Task<::nprpc::ClientStream<$Request$, $Response$>> $MethodAsync$(\n"
    "        ::nprpc::CallOptions options = ::nprpc::CallOptions())$suffix$;\n",
};

void PrintStubMethods(google::protobuf::io::Printer& p, const ServiceDescriptor* service,
                      bool interface) {
  for (int i = 0; i < service->method_count(); ++i) {
    const MethodDescriptor* method = service->method(i);
    p.Print("\n");
    PrintMethodComment(p, method, "    ");
    Vars vars = MethodVars(method);
    vars["virtual"] = interface ? "virtual " : "";
    vars["suffix"] = interface ? " = 0" : " override";
    p.Print(vars, kStubMethodDeclarations[KindOf(method)]);
  }
}

}  // namespace

std::string StubInterfaceDeclaration(const ServiceDescriptor* service) {
  return Print([&](google::protobuf::io::Printer& p) {
    p.Print(ServiceVars(service),
            "  // The client calls of $full_name$, three forms per method:\n"
            "  //   Method(request, options): blocks until the call completes; never on\n"
            "  //     an I/O loop thread nor in a coroutine.\n"
            "  //   Method(request, done, options): returns at once; `done` runs once, on\n"
            "  //     the channel's I/O loop thread, and must not block. (`options` has no\n"
            "  //     default here, so that Method(request, {}) always means the first.)\n"
            "  //   MethodAsync(request, options): a lazy task to co_await; resumes on the\n"
            "  //     channel's I/O loop thread. `request` must outlive the await.\n");
    if (HasStreaming(service)) {
      p.Print(
          "  // Streaming methods (rpc/client_streaming.h): Method(...) returns a\n"
          "  //   blocking reader/writer; Method(..., reactor, options) binds a reactor\n"
          "  //   (not owned; OnDone is its last call); co_await MethodAsync(...)\n"
          "  //   yields a coroutine stream.\n");
    }
    p.Print(
        "  // Called from a handler of a generated service, each form inherits the\n"
        "  // incoming call's deadline and metadata (see nprpc::StubOptions).\n"
        "  class StubInterface {\n"
        "   public:\n"
        "    virtual ~StubInterface() = default;\n");
    PrintStubMethods(p, service, /*interface=*/true);
    p.Print("  };\n");
  });
}

std::string StubDeclaration(const ServiceDescriptor* service) {
  return Print([&](google::protobuf::io::Printer& p) {
    p.Print(ServiceVars(service),
            "  // StubInterface over a Channel (not owned; must outlive the stub and its\n"
            "  // calls). Safe from any thread.\n"
            "  class Stub final : public StubInterface {\n"
            "   public:\n"
            "    explicit Stub(::nprpc::Channel* channel,\n"
            "        const ::nprpc::StubOptions& options = ::nprpc::StubOptions());\n");
    PrintStubMethods(p, service, /*interface=*/false);
    p.Print(
        "\n"
        "   private:\n"
        "    const ::nprpc::codegen_internal::StubCore nprpc_core_;\n"
        "  };\n"
        "\n"
        "  static ::std::unique_ptr<Stub> NewStub(::nprpc::Channel* channel,\n"
        "      const ::nprpc::StubOptions& options = ::nprpc::StubOptions());\n");
  });
}

namespace {

// The three server bases differ in the comment, the member signatures (per
// kind) and the handler factory.
struct BaseStyle {
  const char* class_name;
  const char* comment;
  const char* streaming_comment;  // for services with streaming methods
  const char* declarations[4];    // of one method per Kind, $vars$ of MethodVars
};

const BaseStyle kSync = {
    "Service",
    "  // Sync server base: override the methods you serve (the others answer\n"
    "  // UNIMPLEMENTED). Handlers may block (ServerOptions::handler_threads says\n"
    "  // where they run) and run concurrently: they must be thread-safe.\n",
    "  // Streaming methods read and write through blocking ServerReader,\n"
    "  // ServerWriter and ServerReaderWriter (rpc/server_streaming.h); the\n"
    "  // returned status ends the call.\n",
    {
        "    virtual ::absl::Status $Method$(::nprpc::ServerContext& context,\n"
        "        const $Request$& request, $Response$* response);\n",
        "    virtual ::absl::Status $Method$(::nprpc::ServerContext& context,\n"
        "        ::nprpc::ServerReader<$Request$>* reader, $Response$* response);\n",
        "    virtual ::absl::Status $Method$(::nprpc::ServerContext& context,\n"
        "        const $Request$& request, ::nprpc::ServerWriter<$Response$>* writer);\n",
        "    virtual ::absl::Status $Method$(::nprpc::ServerContext& context,\n"
        "        ::nprpc::ServerReaderWriter<$Response$, $Request$>* stream);\n",
    },
};

const BaseStyle kCallback = {
    "CallbackService",
    "  // Callback server base: a handler completes its call through `done`\n"
    "  // exactly once, from any thread, now or later (`context`, `request` and\n"
    "  // `response` stay valid until then). Handlers run on the server's I/O\n"
    "  // loop: never block in them (hand blocking work to a thread of your own\n"
    "  // and complete `done` from there). Unoverridden methods answer\n"
    "  // UNIMPLEMENTED.\n",
    "  // Streaming methods return a reactor (rpc/server_streaming.h) that the\n"
    "  // server owns and deletes after its OnDone(); its Finish() ends the call.\n",
    {
        "    virtual void $Method$(::nprpc::ServerContext& context,\n"
        "        const $Request$& request, $Response$* response,\n"
        "        ::nprpc::Responder done);\n",
        "    virtual ::std::unique_ptr<::nprpc::ServerReadReactor<$Request$>> $Method$(\n"
        "        ::nprpc::ServerContext& context, $Response$* response);\n",
        "    virtual ::std::unique_ptr<::nprpc::ServerWriteReactor<$Response$>> $Method$(\n"
        "        ::nprpc::ServerContext& context, const $Request$& request);\n",
        "    virtual ::std::unique_ptr<::nprpc::ServerBidiReactor<$Request$, $Response$>>\n"
        "    $Method$(::nprpc::ServerContext& context);\n",
    },
};

const BaseStyle kCoroutine = {
    "CoroutineService",
    "  // Coroutine server base: a handler is a coroutine returning its status;\n"
    "  // it may co_await stub calls (XxxAsync) and nprpc::WhenAll without\n"
    "  // blocking any thread. It starts on the server's I/O loop and continues,\n"
    "  // after each await, on the thread that completed it (for a stub call,\n"
    "  // the channel's I/O loop thread): never block in it. Outgoing calls inherit\n"
    "  // the call's deadline and metadata. Unoverridden methods answer\n"
    "  // UNIMPLEMENTED.\n",
    "  // Streaming methods co_await Read() and Write() of ServerStreamReader,\n"
    "  // ServerStreamWriter and ServerStream (rpc/server_streaming.h).\n",
    {
        "    virtual ::nprpc::Task<::absl::Status> $Method$(::nprpc::ServerContext& context,\n"
        "        const $Request$& request, $Response$* response);\n",
        "    virtual ::nprpc::Task<::absl::Status> $Method$(::nprpc::ServerContext& context,\n"
        "        ::nprpc::ServerStreamReader<$Request$>& reader, $Response$* response);\n",
        "    virtual ::nprpc::Task<::absl::Status> $Method$(::nprpc::ServerContext& context,\n"
        "        const $Request$& request, ::nprpc::ServerStreamWriter<$Response$>& writer);\n",
        "    virtual ::nprpc::Task<::absl::Status> $Method$(::nprpc::ServerContext& context,\n"
        "        ::nprpc::ServerStream<$Request$, $Response$>& stream);\n",
    },
};

std::string BaseDeclaration(const ServiceDescriptor* service, const BaseStyle& style) {
  return Print([&](google::protobuf::io::Printer& p) {
    Vars vars = ServiceVars(service);
    vars["Base"] = style.class_name;
    p.PrintRaw(style.comment);
    if (HasStreaming(service)) p.PrintRaw(style.streaming_comment);
    p.Print(vars,
            "  class $Base$ : public ::nprpc::Service {\n"
            "   public:\n"
            "    $Base$();\n"
            "    ~$Base$() override;\n");
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      p.Print("\n");
      PrintMethodComment(p, method, "    ");
      p.Print(MethodVars(method), style.declarations[KindOf(method)]);
    }
    p.Print("  };\n");
  });
}

}  // namespace

std::string SyncServiceDeclaration(const ServiceDescriptor* service) {
  return BaseDeclaration(service, kSync);
}
std::string CallbackServiceDeclaration(const ServiceDescriptor* service) {
  return BaseDeclaration(service, kCallback);
}
std::string CoroutineServiceDeclaration(const ServiceDescriptor* service) {
  return BaseDeclaration(service, kCoroutine);
}

std::string ServiceDeclaration(const ServiceDescriptor* service) {
  std::string out = LeadingComment(service, "");
  out += Print([&](google::protobuf::io::Printer& p) {
    p.Print(ServiceVars(service),
            "class $Service$ final {\n"
            " public:\n"
            "  // The service's name on the wire.\n"
            "  static constexpr ::absl::string_view kServiceName = \"$full_name$\";\n"
            "  // From the generated descriptor pool.\n"
            "  static const ::google::protobuf::ServiceDescriptor* descriptor();\n"
            "\n");
  });
  absl::StrAppend(&out, StubInterfaceDeclaration(service), "\n", StubDeclaration(service), "\n",
                  SyncServiceDeclaration(service), "\n", CallbackServiceDeclaration(service), "\n",
                  CoroutineServiceDeclaration(service), "\n");
  out += Print([&](google::protobuf::io::Printer& p) {
    p.Print(ServiceVars(service),
            " private:\n"
            "  $Service$() = delete;\n"
            "};\n");
  });
  return out;
}

// ------------------------------------------------------------ Source sections

namespace {

// The stub's three forms of one method, per Kind.
const char* const kStubMethodDefinitions[] = {
    // kUnary
    "\n"
    "::absl::StatusOr<$Response$> $Service$::Stub::$Method$(\n"
    "    const $Request$& request, const ::nprpc::CallOptions& options) {\n"
    "  return nprpc_core_.BlockingCall<$Response$>(\"$method$\", request, options);\n"
    "}\n"
    "\n"
    "void $Service$::Stub::$Method$(const $Request$& request,\n"
    "    ::nprpc::Callback<$Response$> done, const ::nprpc::CallOptions& options) {\n"
    "  nprpc_core_.CallbackCall<$Response$>(\"$method$\", request, ::std::move(done),\n"
    "      options);\n"
    "}\n"
    "\n"
    "::nprpc::Task<::absl::StatusOr<$Response$>> $Service$::Stub::$MethodAsync$(\n"
    "    const $Request$& request, ::nprpc::CallOptions options) {\n"
    "  return nprpc_core_.AwaitableCall<$Response$>(\"$method$\", request,\n"
    "      ::std::move(options));\n"
    "}\n",
    // kClientStreaming
    "\n"
    "::std::unique_ptr<::nprpc::ClientWriter<$Request$>> $Service$::Stub::$Method$(\n"
    "    $Response$* response, const ::nprpc::CallOptions& options) {\n"
    "  return nprpc_core_.ClientStreamingCall<$Request$>(\"$method$\", response, options);\n"
    "}\n"
    "\n"
    "void $Service$::Stub::$Method$($Response$* response,\n"
    "    ::nprpc::ClientWriteReactor<$Request$>* reactor, const ::nprpc::CallOptions& options) {\n"
    "  nprpc_core_.ReactorCall(\"$method$\", reactor, nullptr, response, options);\n"
    "}\n"
    "\n"
    "::nprpc::Task<::nprpc::ClientStreamWriter<$Request$, $Response$>>\n"
    "$Service$::Stub::$MethodAsync$(::nprpc::CallOptions options) {\n"
    "  return nprpc_core_.AwaitableClientStreamingCall<$Request$, $Response$>(\"$method$\",\n"
    "      ::std::move(options));\n"
    "}\n",
    // kServerStreaming
    "\n"
    "::std::unique_ptr<::nprpc::ClientReader<$Response$>> $Service$::Stub::$Method$(\n"
    "    const $Request$& request, const ::nprpc::CallOptions& options) {\n"
    "  return nprpc_core_.ServerStreamingCall<$Response$>(\"$method$\", request, options);\n"
    "}\n"
    "\n"
    "void $Service$::Stub::$Method$(const $Request$& request,\n"
    "    ::nprpc::ClientReadReactor<$Response$>* reactor, const ::nprpc::CallOptions& options) {\n"
    "  nprpc_core_.ReactorCall(\"$method$\", reactor, &request, nullptr, options);\n"
    "}\n"
    "\n"
    "::nprpc::Task<::nprpc::ClientStreamReader<$Response$>> $Service$::Stub::$MethodAsync$(\n"
    "    const $Request$& request, ::nprpc::CallOptions options) {\n"
    "  return nprpc_core_.AwaitableServerStreamingCall<$Response$>(\"$method$\", request,\n"
    "      ::std::move(options));\n"
    "}\n",
    // kBidi
    "\n"
    "::std::unique_ptr<::nprpc::ClientReaderWriter<$Request$, $Response$>>\n"
    "$Service$::Stub::$Method$(const ::nprpc::CallOptions& options) {\n"
    "  return nprpc_core_.BidiStreamingCall<$Request$, $Response$>(\"$method$\", options);\n"
    "}\n"
    "\n"
    "void $Service$::Stub::$Method$(\n"
    "    ::nprpc::ClientBidiReactor<$Request$, $Response$>* reactor,\n"
    "    const ::nprpc::CallOptions& options) {\n"
    "  nprpc_core_.ReactorCall(\"$method$\", reactor, nullptr, nullptr, options);\n"
    "}\n"
    "\n"
    "::nprpc::Task<::nprpc::ClientStream<$Request$, $Response$>>\n"
    "$Service$::Stub::$MethodAsync$(::nprpc::CallOptions options) {\n"
    "  return nprpc_core_.AwaitableBidiStreamingCall<$Request$, $Response$>(\"$method$\",\n"
    "      ::std::move(options));\n"
    "}\n",
};

}  // namespace

std::string StubDefinitions(const ServiceDescriptor* service) {
  return Print([&](google::protobuf::io::Printer& p) {
    p.Print(ServiceVars(service),
            "$Service$::Stub::Stub(::nprpc::Channel* channel,\n"
            "    const ::nprpc::StubOptions& options)\n"
            "    : nprpc_core_(channel, kServiceName, options) {}\n"
            "\n"
            "::std::unique_ptr<$Service$::Stub> $Service$::NewStub(::nprpc::Channel* channel,\n"
            "    const ::nprpc::StubOptions& options) {\n"
            "  return ::std::make_unique<Stub>(channel, options);\n"
            "}\n");
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      p.Print(MethodVars(method), kStubMethodDefinitions[KindOf(method)]);
    }
  });
}

namespace {

struct BaseDefinitionStyle {
  const char* class_name;
  const char* factory;         // MakeXxxHandler (unary)
  const char* stream_factory;  // MakeXxxStreamHandler (streaming kinds)
  // Per Kind: the handler lambda and the UNIMPLEMENTED member, $vars$ of
  // MethodVars.
  const char* lambdas[4];
  const char* default_methods[4];
};

const BaseDefinitionStyle kSyncDefinition = {
    "Service",
    "MakeSyncHandler",
    "MakeSyncStreamHandler",
    {
        "[this](::nprpc::ServerContext& context, const $Request$& request,\n"
        "              $Response$* response) {\n"
        "            return this->$Method$(context, request, response);\n"
        "          }",
        "[this](::nprpc::ServerContext& context, ::nprpc::ServerReader<$Request$>* reader,\n"
        "              $Response$* response) {\n"
        "            return this->$Method$(context, reader, response);\n"
        "          }",
        "[this](::nprpc::ServerContext& context, const $Request$& request,\n"
        "              ::nprpc::ServerWriter<$Response$>* writer) {\n"
        "            return this->$Method$(context, request, writer);\n"
        "          }",
        "[this](::nprpc::ServerContext& context,\n"
        "              ::nprpc::ServerReaderWriter<$Response$, $Request$>* stream) {\n"
        "            return this->$Method$(context, stream);\n"
        "          }",
    },
    {
        "::absl::Status $Service$::Service::$Method$(::nprpc::ServerContext&,\n"
        "    const $Request$&, $Response$*) {\n"
        "  return ::nprpc::codegen_internal::Unimplemented(kServiceName, \"$method$\");\n"
        "}\n",
        "::absl::Status $Service$::Service::$Method$(::nprpc::ServerContext&,\n"
        "    ::nprpc::ServerReader<$Request$>*, $Response$*) {\n"
        "  return ::nprpc::codegen_internal::Unimplemented(kServiceName, \"$method$\");\n"
        "}\n",
        "::absl::Status $Service$::Service::$Method$(::nprpc::ServerContext&,\n"
        "    const $Request$&, ::nprpc::ServerWriter<$Response$>*) {\n"
        "  return ::nprpc::codegen_internal::Unimplemented(kServiceName, \"$method$\");\n"
        "}\n",
        "::absl::Status $Service$::Service::$Method$(::nprpc::ServerContext&,\n"
        "    ::nprpc::ServerReaderWriter<$Response$, $Request$>*) {\n"
        "  return ::nprpc::codegen_internal::Unimplemented(kServiceName, \"$method$\");\n"
        "}\n",
    },
};

const BaseDefinitionStyle kCallbackDefinition = {
    "CallbackService",
    "MakeCallbackHandler",
    "MakeCallbackStreamHandler",
    {
        "[this](::nprpc::ServerContext& context, const $Request$& request,\n"
        "              $Response$* response, ::nprpc::Responder done) {\n"
        "            this->$Method$(context, request, response, ::std::move(done));\n"
        "          }",
        "[this](::nprpc::ServerContext& context, $Response$* response) {\n"
        "            return this->$Method$(context, response);\n"
        "          }",
        "[this](::nprpc::ServerContext& context, const $Request$& request) {\n"
        "            return this->$Method$(context, request);\n"
        "          }",
        "[this](::nprpc::ServerContext& context) {\n"
        "            return this->$Method$(context);\n"
        "          }",
    },
    {
        "void $Service$::CallbackService::$Method$(::nprpc::ServerContext&,\n"
        "    const $Request$&, $Response$*, ::nprpc::Responder done) {\n"
        "  done.Finish(::nprpc::codegen_internal::Unimplemented(kServiceName, \"$method$\"));\n"
        "}\n",
        "::std::unique_ptr<::nprpc::ServerReadReactor<$Request$>>\n"
        "$Service$::CallbackService::$Method$(::nprpc::ServerContext&, $Response$*) {\n"
        "  return ::nprpc::codegen_internal::UnimplementedReactor<\n"
        "      ::nprpc::ServerReadReactor<$Request$>>(kServiceName, \"$method$\");\n"
        "}\n",
        "::std::unique_ptr<::nprpc::ServerWriteReactor<$Response$>>\n"
        "$Service$::CallbackService::$Method$(::nprpc::ServerContext&, const $Request$&) {\n"
        "  return ::nprpc::codegen_internal::UnimplementedReactor<\n"
        "      ::nprpc::ServerWriteReactor<$Response$>>(kServiceName, \"$method$\");\n"
        "}\n",
        "::std::unique_ptr<::nprpc::ServerBidiReactor<$Request$, $Response$>>\n"
        "$Service$::CallbackService::$Method$(::nprpc::ServerContext&) {\n"
        "  return ::nprpc::codegen_internal::UnimplementedReactor<\n"
        "      ::nprpc::ServerBidiReactor<$Request$, $Response$>>(kServiceName, \"$method$\");\n"
        "}\n",
    },
};

const BaseDefinitionStyle kCoroutineDefinition = {
    "CoroutineService",
    "MakeCoroutineHandler",
    "MakeCoroutineStreamHandler",
    {
        "[this](::nprpc::ServerContext& context, const $Request$& request,\n"
        "              $Response$* response) {\n"
        "            return this->$Method$(context, request, response);\n"
        "          }",
        "[this](::nprpc::ServerContext& context,\n"
        "              ::nprpc::ServerStreamReader<$Request$>& reader, $Response$* response) {\n"
        "            return this->$Method$(context, reader, response);\n"
        "          }",
        "[this](::nprpc::ServerContext& context, const $Request$& request,\n"
        "              ::nprpc::ServerStreamWriter<$Response$>& writer) {\n"
        "            return this->$Method$(context, request, writer);\n"
        "          }",
        "[this](::nprpc::ServerContext& context,\n"
        "              ::nprpc::ServerStream<$Request$, $Response$>& stream) {\n"
        "            return this->$Method$(context, stream);\n"
        "          }",
    },
    {
        "::nprpc::Task<::absl::Status> $Service$::CoroutineService::$Method$(\n"
        "    ::nprpc::ServerContext&, const $Request$&, $Response$*) {\n"
        "  co_return ::nprpc::codegen_internal::Unimplemented(kServiceName, \"$method$\");\n"
        "}\n",
        "::nprpc::Task<::absl::Status> $Service$::CoroutineService::$Method$(\n"
        "    ::nprpc::ServerContext&, ::nprpc::ServerStreamReader<$Request$>&, $Response$*) {\n"
        "  co_return ::nprpc::codegen_internal::Unimplemented(kServiceName, \"$method$\");\n"
        "}\n",
        "::nprpc::Task<::absl::Status> $Service$::CoroutineService::$Method$(\n"
        "    ::nprpc::ServerContext&, const $Request$&,\n"
        "    ::nprpc::ServerStreamWriter<$Response$>&) {\n"
        "  co_return ::nprpc::codegen_internal::Unimplemented(kServiceName, \"$method$\");\n"
        "}\n",
        "::nprpc::Task<::absl::Status> $Service$::CoroutineService::$Method$(\n"
        "    ::nprpc::ServerContext&, ::nprpc::ServerStream<$Request$, $Response$>&) {\n"
        "  co_return ::nprpc::codegen_internal::Unimplemented(kServiceName, \"$method$\");\n"
        "}\n",
    },
};

std::string BaseDefinitions(const ServiceDescriptor* service, const BaseDefinitionStyle& style) {
  return Print([&](google::protobuf::io::Printer& p) {
    Vars vars = ServiceVars(service);
    vars["Base"] = style.class_name;
    p.Print(vars,
            "$Service$::$Base$::$Base$()\n"
            "    : ::nprpc::Service(::std::string(kServiceName)) {\n");
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      const Kind kind = KindOf(method);
      Vars m = MethodVars(method);
      m["lambda"] =
          Print([&](google::protobuf::io::Printer& q) { q.Print(m, style.lambdas[kind]); });
      if (kind == kUnary) {
        m["factory"] = style.factory;
        p.Print(m,
                "  ::nprpc::codegen_internal::AddGeneratedMethod(*this, \"$method$\",\n"
                "      ::nprpc::codegen_internal::$factory$<$Request$, $Response$>(\n"
                "          $lambda$));\n");
      } else {
        m["factory"] = style.stream_factory;
        p.Print(m,
                "  ::nprpc::codegen_internal::AddGeneratedMethod(*this, \"$method$\",\n"
                "      ::nprpc::codegen_internal::$factory$<$Request$, $Response$,\n"
                "          $kind$>(\n"
                "          $lambda$));\n");
      }
    }
    p.Print(vars,
            "}\n"
            "\n"
            "$Service$::$Base$::~$Base$() = default;\n");
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      p.Print("\n");
      p.Print(MethodVars(method), style.default_methods[KindOf(method)]);
    }
  });
}

}  // namespace

std::string SyncServiceDefinitions(const ServiceDescriptor* service) {
  return BaseDefinitions(service, kSyncDefinition);
}
std::string CallbackServiceDefinitions(const ServiceDescriptor* service) {
  return BaseDefinitions(service, kCallbackDefinition);
}
std::string CoroutineServiceDefinitions(const ServiceDescriptor* service) {
  return BaseDefinitions(service, kCoroutineDefinition);
}

std::string ServiceDefinitions(const ServiceDescriptor* service) {
  std::string out = Print([&](google::protobuf::io::Printer& p) {
    Vars vars = ServiceVars(service);
    vars["table"] = DescriptorTableName(service->file());
    p.Print(vars,
            "// ------------------------------------------------------------ $Service$\n"
            "\n"
            "const ::google::protobuf::ServiceDescriptor* $Service$::descriptor() {\n"
            "  // Naming the file's descriptor table also keeps its .pb.cc linked.\n"
            "  static const ::google::protobuf::ServiceDescriptor* const descriptor = [] {\n"
            "    ::google::protobuf::internal::AssignDescriptors(&::$table$);\n"
            "    return ::google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(\n"
            "        \"$full_name$\");\n"
            "  }();\n"
            "  return descriptor;\n"
            "}\n"
            "\n");
  });
  absl::StrAppend(&out, StubDefinitions(service), "\n", SyncServiceDefinitions(service), "\n",
                  CallbackServiceDefinitions(service), "\n", CoroutineServiceDefinitions(service));
  return out;
}

// ------------------------------------------------------------ Mock header

namespace {

// The mock's members for one method, per Kind. Streaming forms are all
// MOCK_METHODs (types with commas in parentheses, parameters unnamed, as
// gMock wants them).
const char* const kMockMethods[] = {
    // kUnary
    "  MOCK_METHOD(::absl::StatusOr<$Response$>, $Method$,\n"
    "      (const $Request$& request, const ::nprpc::CallOptions& options), (override));\n"
    "  void $Method$(const $Request$& request, ::nprpc::Callback<$Response$> done,\n"
    "      const ::nprpc::CallOptions& options) override {\n"
    "    ::absl::StatusOr<$Response$> result = $Method$(request, options);\n"
    "    if (done) done(::std::move(result));\n"
    "  }\n"
    "  ::nprpc::Task<::absl::StatusOr<$Response$>> $MethodAsync$(\n"
    "      const $Request$& request, ::nprpc::CallOptions options) override {\n"
    "    co_return $Method$(request, options);\n"
    "  }\n",
    // kClientStreaming
    "  MOCK_METHOD(::std::unique_ptr<::nprpc::ClientWriter<$Request$>>, $Method$,\n"
    "      ($Response$* response, const ::nprpc::CallOptions& options), (override));\n"
    "  MOCK_METHOD(void, $Method$, ($Response$* response,\n"
    "      ::nprpc::ClientWriteReactor<$Request$>* reactor,\n"
    "      const ::nprpc::CallOptions& options), (override));\n"
    "  MOCK_METHOD((::nprpc::Task<::nprpc::ClientStreamWriter<$Request$, $Response$>>),\n"
    "      $MethodAsync$, (::nprpc::CallOptions options), (override));\n",
    // kServerStreaming
    "  MOCK_METHOD(::std::unique_ptr<::nprpc::ClientReader<$Response$>>, $Method$,\n"
    "      (const $Request$& request, const ::nprpc::CallOptions& options), (override));\n"
    "  MOCK_METHOD(void, $Method$, (const $Request$& request,\n"
    "      ::nprpc::ClientReadReactor<$Response$>* reactor,\n"
    "      const ::nprpc::CallOptions& options), (override));\n"
    "  MOCK_METHOD(::nprpc::Task<::nprpc::ClientStreamReader<$Response$>>, $MethodAsync$,\n"
    "      (const $Request$& request, ::nprpc::CallOptions options), (override));\n",
    // kBidi
    "  MOCK_METHOD((::std::unique_ptr<::nprpc::ClientReaderWriter<$Request$, $Response$>>),\n"
    "      $Method$, (const ::nprpc::CallOptions& options), (override));\n"
    "  MOCK_METHOD(void, $Method$,\n"
    "      ((::nprpc::ClientBidiReactor<$Request$, $Response$>*),\n"
    "       const ::nprpc::CallOptions&), (override));\n"
    "  MOCK_METHOD((::nprpc::Task<::nprpc::ClientStream<$Request$, $Response$>>),\n"
    "      $MethodAsync$, (::nprpc::CallOptions options), (override));\n",
};

}  // namespace

std::string MockStubDeclaration(const ServiceDescriptor* service) {
  return Print([&](google::protobuf::io::Printer& p) {
    p.Print(ServiceVars(service),
            "// A gMock $Service$::StubInterface. Set expectations on the sync form,\n"
            "// EXPECT_CALL(mock, Method(request_matcher, options_matcher)); the callback\n"
            "// and awaitable forms answer through it, synchronously.\n");
    if (HasStreaming(service)) {
      p.Print(
          "// Every form of a streaming method is a MOCK_METHOD of its own; return\n"
          "// streams over a fake ClientStreamCore (rpc/testing/fake_stream.h).\n");
    }
    p.Print(ServiceVars(service),
            "class $Mock$ : public $Service$::StubInterface {\n"
            " public:\n");
    for (int i = 0; i < service->method_count(); ++i) {
      if (i > 0) p.Print("\n");
      const MethodDescriptor* method = service->method(i);
      p.Print(MethodVars(method), kMockMethods[KindOf(method)]);
    }
    p.Print("};\n");
  });
}

}  // namespace codegen
}  // namespace nprpc
