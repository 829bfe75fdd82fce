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

Vars MethodVars(const MethodDescriptor* method) {
  Vars vars = ServiceVars(method->service());
  vars["Method"] = MethodName(method);
  vars["MethodAsync"] = AsyncMethodName(method);
  vars["method"] = method->name();  // on the wire
  vars["Request"] = QualifiedMessageName(method->input_type());
  vars["Response"] = QualifiedMessageName(method->output_type());
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
            "  //     channel's I/O loop thread. `request` must outlive the await.\n"
            "  // Called from a handler of a generated service, each form inherits the\n"
            "  // incoming call's deadline and metadata (see nprpc::StubOptions).\n"
            "  class StubInterface {\n"
            "   public:\n"
            "    virtual ~StubInterface() = default;\n");
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      p.Print("\n");
      PrintMethodComment(p, method, "    ");
      p.Print(MethodVars(method),
              "    virtual ::absl::StatusOr<$Response$> $Method$(\n"
              "        const $Request$& request,\n"
              "        const ::nprpc::CallOptions& options = ::nprpc::CallOptions()) = 0;\n"
              "    virtual void $Method$(const $Request$& request,\n"
              "        ::nprpc::Callback<$Response$> done,\n"
              "        const ::nprpc::CallOptions& options) = 0;\n"
              "    virtual ::nprpc::Task<::absl::StatusOr<$Response$>> $MethodAsync$(\n"
              "        const $Request$& request,\n"
              "        ::nprpc::CallOptions options = ::nprpc::CallOptions()) = 0;\n");
    }
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
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      p.Print("\n");
      PrintMethodComment(p, method, "    ");
      p.Print(MethodVars(method),
              "    ::absl::StatusOr<$Response$> $Method$(\n"
              "        const $Request$& request,\n"
              "        const ::nprpc::CallOptions& options = ::nprpc::CallOptions()) override;\n"
              "    void $Method$(const $Request$& request,\n"
              "        ::nprpc::Callback<$Response$> done,\n"
              "        const ::nprpc::CallOptions& options) override;\n"
              "    ::nprpc::Task<::absl::StatusOr<$Response$>> $MethodAsync$(\n"
              "        const $Request$& request,\n"
              "        ::nprpc::CallOptions options = ::nprpc::CallOptions()) override;\n");
    }
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

// The three server bases differ in the comment, the member signature and
// the handler factory.
struct BaseStyle {
  const char* class_name;
  const char* comment;
  const char* declaration;  // of one method, $vars$ of MethodVars
};

const BaseStyle kSync = {
    "Service",
    "  // Sync server base: override the methods you serve (the others answer\n"
    "  // UNIMPLEMENTED). Handlers may block (ServerOptions::handler_threads says\n"
    "  // where they run) and run concurrently: they must be thread-safe.\n",
    "    virtual ::absl::Status $Method$(::nprpc::ServerContext& context,\n"
    "        const $Request$& request, $Response$* response);\n",
};

const BaseStyle kCallback = {
    "CallbackService",
    "  // Callback server base: a handler completes its call through `done`\n"
    "  // exactly once, from any thread, now or later (`context`, `request` and\n"
    "  // `response` stay valid until then). Handlers run on the server's I/O\n"
    "  // loop: never block in them (hand blocking work to a thread of your own\n"
    "  // and complete `done` from there). Unoverridden methods answer\n"
    "  // UNIMPLEMENTED.\n",
    "    virtual void $Method$(::nprpc::ServerContext& context,\n"
    "        const $Request$& request, $Response$* response,\n"
    "        ::nprpc::Responder done);\n",
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
    "    virtual ::nprpc::Task<::absl::Status> $Method$(::nprpc::ServerContext& context,\n"
    "        const $Request$& request, $Response$* response);\n",
};

std::string BaseDeclaration(const ServiceDescriptor* service, const BaseStyle& style) {
  return Print([&](google::protobuf::io::Printer& p) {
    Vars vars = ServiceVars(service);
    vars["Base"] = style.class_name;
    p.PrintRaw(style.comment);
    p.Print(vars,
            "  class $Base$ : public ::nprpc::Service {\n"
            "   public:\n"
            "    $Base$();\n"
            "    ~$Base$() override;\n");
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      p.Print("\n");
      PrintMethodComment(p, method, "    ");
      p.Print(MethodVars(method), style.declaration);
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
      p.Print(MethodVars(service->method(i)),
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
              "}\n");
    }
  });
}

namespace {

struct BaseDefinitionStyle {
  const char* class_name;
  const char* factory;         // MakeXxxHandler
  const char* lambda;          // the handler lambda, $vars$ of MethodVars
  const char* default_method;  // the UNIMPLEMENTED member
};

const BaseDefinitionStyle kSyncDefinition = {
    "Service",
    "MakeSyncHandler",
    "[this](::nprpc::ServerContext& context, const $Request$& request,\n"
    "              $Response$* response) {\n"
    "            return this->$Method$(context, request, response);\n"
    "          }",
    "::absl::Status $Service$::Service::$Method$(::nprpc::ServerContext&,\n"
    "    const $Request$&, $Response$*) {\n"
    "  return ::nprpc::codegen_internal::Unimplemented(kServiceName, \"$method$\");\n"
    "}\n",
};

const BaseDefinitionStyle kCallbackDefinition = {
    "CallbackService",
    "MakeCallbackHandler",
    "[this](::nprpc::ServerContext& context, const $Request$& request,\n"
    "              $Response$* response, ::nprpc::Responder done) {\n"
    "            this->$Method$(context, request, response, ::std::move(done));\n"
    "          }",
    "void $Service$::CallbackService::$Method$(::nprpc::ServerContext&,\n"
    "    const $Request$&, $Response$*, ::nprpc::Responder done) {\n"
    "  done.Finish(::nprpc::codegen_internal::Unimplemented(kServiceName, \"$method$\"));\n"
    "}\n",
};

const BaseDefinitionStyle kCoroutineDefinition = {
    "CoroutineService",
    "MakeCoroutineHandler",
    "[this](::nprpc::ServerContext& context, const $Request$& request,\n"
    "              $Response$* response) {\n"
    "            return this->$Method$(context, request, response);\n"
    "          }",
    "::nprpc::Task<::absl::Status> $Service$::CoroutineService::$Method$(\n"
    "    ::nprpc::ServerContext&, const $Request$&, $Response$*) {\n"
    "  co_return ::nprpc::codegen_internal::Unimplemented(kServiceName, \"$method$\");\n"
    "}\n",
};

std::string BaseDefinitions(const ServiceDescriptor* service, const BaseDefinitionStyle& style) {
  return Print([&](google::protobuf::io::Printer& p) {
    Vars vars = ServiceVars(service);
    vars["Base"] = style.class_name;
    p.Print(vars,
            "$Service$::$Base$::$Base$()\n"
            "    : ::nprpc::Service(::std::string(kServiceName)) {\n");
    for (int i = 0; i < service->method_count(); ++i) {
      Vars m = MethodVars(service->method(i));
      m["factory"] = style.factory;
      m["lambda"] = Print([&](google::protobuf::io::Printer& q) { q.Print(m, style.lambda); });
      p.Print(m,
              "  ::nprpc::codegen_internal::AddGeneratedMethod(*this, \"$method$\",\n"
              "      ::nprpc::codegen_internal::$factory$<$Request$, $Response$>(\n"
              "          $lambda$));\n");
    }
    p.Print(vars,
            "}\n"
            "\n"
            "$Service$::$Base$::~$Base$() = default;\n");
    for (int i = 0; i < service->method_count(); ++i) {
      p.Print("\n");
      p.Print(MethodVars(service->method(i)), style.default_method);
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

std::string MockStubDeclaration(const ServiceDescriptor* service) {
  return Print([&](google::protobuf::io::Printer& p) {
    p.Print(ServiceVars(service),
            "// A gMock $Service$::StubInterface. Set expectations on the sync form,\n"
            "// EXPECT_CALL(mock, Method(request_matcher, options_matcher)); the callback\n"
            "// and awaitable forms answer through it, synchronously.\n"
            "class $Mock$ : public $Service$::StubInterface {\n"
            " public:\n");
    for (int i = 0; i < service->method_count(); ++i) {
      if (i > 0) p.Print("\n");
      p.Print(
          MethodVars(service->method(i)),
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
          "  }\n");
    }
    p.Print("};\n");
  });
}

}  // namespace codegen
}  // namespace nprpc
